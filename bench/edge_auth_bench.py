"""Benchmark of the Lambda@Edge token check, warm: time per request of the RS256 verification.

Measures, in one warm process (as a reused Lambda container would be):
  verify      - decode_verified + Cognito claim checks on a 2048-bit RS256 ID token (pure Python),
                token not seen before (the signature memo is cleared before every call)
  handler     - the whole viewer-request handler on CloudFront's event shape, new token, forwarded
  reject      - the handler on a token with a bad signature (the exponentiation still runs)
  handler-hit - the handler on a token this container has already verified (memo hit)
  pyjwt       - for reference only: PyJWT on the `cryptography` backend (OpenSSL), which does not
                fit the 1 MB package of a viewer-request function
and the size of the zip `advising edge build` makes from the example config.
Bounded: each figure runs for --seconds (default 1.5) after a short warm-up. Loopback/CPU only.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from advising.edge import load_config, package_zip  # noqa: E402
from functions.edge_auth.config import EdgeConfig  # noqa: E402
from functions.edge_auth.handler import check_claims, respond  # noqa: E402
from functions.edge_auth.jwt_rs256 import _signature_valid, decode_verified  # noqa: E402

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path

EXAMPLE_CONFIG = REPO / "functions" / "edge_auth" / "edge_auth.example.json"



def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def measure(call: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Mean seconds per call over batches until `seconds` have passed, after a warm-up."""
    for _ in range(200):
        call()
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(200):
            call()
        calls += 200
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / calls, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="measuring time per figure (default 1.5)")
    args = parser.parse_args()
    if not 0.1 <= args.seconds <= 30:
        parser.error("--seconds must be between 0.1 and 30")

    now = int(time.time())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256", "n": b64url(public.n.to_bytes(256, "big")), "e": "AQAB"}
    config = EdgeConfig.from_dict({**json.loads(EXAMPLE_CONFIG.read_text()), "jwks": {"keys": [jwk]}})
    claims = {
        "sub": "0b6f7c1e-3f5a-4b8e-9d2c-7a1e5f3c9b10", "iss": config.issuer, "aud": config.app_client_id,
        "token_use": "id", "cognito:groups": ["analysts"], "cognito:username": "a.analyst",
        "auth_time": now - 60, "iat": now - 60, "exp": now + 3600,
    }
    signing_input = f"{b64url(json.dumps({'kid': 'bench', 'alg': 'RS256'}).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{signing_input}.{b64url(signature)}"
    # Last byte flipped: still below the modulus, so the exponentiation runs before the mismatch.
    forged = f"{signing_input}.{b64url(signature[:-1] + bytes([signature[-1] ^ 1]))}"

    def event(bearer: str) -> dict:
        # Built per call because a forwarded request loses its Authorization header.
        headers = {"host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                   "authorization": [{"key": "Authorization", "value": f"Bearer {bearer}"}]}
        request = {"clientIp": "203.0.113.178", "headers": headers, "method": "GET", "querystring": "",
                   "uri": "/reports/2026/advisor_daily_load.parquet"}
        return {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": request}}]}

    def verify() -> None:
        _signature_valid.cache_clear()
        check_claims(decode_verified(token, config.keys), config, now)

    def handle() -> None:
        _signature_valid.cache_clear()
        handle_hit()

    def reject() -> None:
        _signature_valid.cache_clear()
        assert respond(event(forged), lambda: config, now)["status"] == "401"

    def handle_hit() -> None:
        assert "status" not in respond(event(token), lambda: config, now)

    import logging

    logging.getLogger("functions.edge_auth.handler").disabled = True  # keep denial logs out of the timing
    verify(), handle(), reject(), handle_hit()

    import jwt as pyjwt

    public_key = key.public_key()

    def reference() -> None:
        pyjwt.decode(token, public_key, algorithms=["RS256"], audience=config.app_client_id, issuer=config.issuer)

    package = package_zip(load_config(EXAMPLE_CONFIG))
    print(f"machine: {describe()}")
    print(f"package: {len(package):,} bytes zipped (limit 1,048,576), from {EXAMPLE_CONFIG.relative_to(REPO)}")
    print(f"{'figure':<12} {'us/request':>11} {'requests/s':>11} {'calls':>8}")
    figures = (("verify", verify), ("handler", handle), ("reject", reject), ("handler-hit", handle_hit), ("pyjwt", reference))
    for name, call in figures:
        per_call, calls = measure(call, args.seconds)
        print(f"{name:<12} {per_call * 1e6:>11.1f} {1 / per_call:>11,.0f} {calls:>8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
