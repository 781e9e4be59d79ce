#!/usr/bin/env bash
# The test command behind `make test`: make sure Redis and PostgreSQL answer (starting them where
# they are absent), then run the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

hostport() {  # URL -> "host port"
  .venv/bin/python -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or int(sys.argv[2]))' "$1" "$2"
}
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
wait_for() { for _ in $(seq 1 50); do reachable "$1" "$2" && return 0; sleep 0.2; done; return 1; }
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $* from Debian packages" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
  else
    echo "error: $* is not installed; install it (Debian/Ubuntu: apt-get install $*)" >&2; exit 1
  fi
}

read -r rhost rport < <(hostport "$REDIS_URL" 6379)
if ! reachable "$rhost" "$rport"; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p .services/redis
  echo "starting redis-server on $rhost:$rport" >&2
  redis-server --daemonize yes --bind "$rhost" --port "$rport" --save "" --appendonly no \
    --dir "$PWD/.services/redis" --logfile "$PWD/.services/redis/redis.log"
  wait_for "$rhost" "$rport" || { echo "error: Redis did not start on $rhost:$rport (see .services/redis/redis.log)" >&2; exit 1; }
fi

read -r phost pport < <(hostport "$DATABASE_URL" 5432)
if ! reachable "$phost" "$pport"; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  echo "starting PostgreSQL on $phost:$pport" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for "$phost" "$pport" || { echo "error: PostgreSQL did not start on $phost:$pport; start it or set DATABASE_URL" >&2; exit 1; }
fi

# The report's browser test opens the page in Debian's chromium (driven by playwright-core from npm).
command -v chromium >/dev/null || apt_install chromium

exec .venv/bin/python -m pytest "$@"
