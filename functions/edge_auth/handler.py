"""Lambda@Edge viewer-request handler: only signed-in staff in the right Cognito group read reports.

Place in the flow: analysts -> CloudFront -> (this function, before the cache) -> S3 reports bucket.
A request passes only with a Cognito ID or access token (Authorization: Bearer, or the configured
cookie) that verifies against the bundled JWKS and configuration, and whose `cognito:groups`
contains the group its path prefix requires. Passing requests are forwarded without the
credential (the S3 origin signs its own requests through origin access control); all others get
a 401 or 403 generated here, whose body says nothing about why.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import time
from importlib import resources
from typing import Any, Callable
from urllib.parse import unquote

from .config import BUNDLED_CONFIG_NAME, EdgeConfig
from .jwt_rs256 import InvalidToken, decode_verified

logger = logging.getLogger(__name__)

REALM = "reports"
GROUPS_CLAIM = "cognito:groups"


class Forbidden(Exception):
    """A valid token that may not read this path; `reason` is for logs only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def handler(event: dict, context: Any) -> dict:
    """Lambda entry point (`edge_auth.handler.handler`)."""
    return respond(event, load_bundled_config, time.time())


@functools.lru_cache(maxsize=1)
def load_bundled_config() -> EdgeConfig:
    """The configuration `advising edge build` put next to this module, parsed once per container."""
    # importlib.resources reads it from /var/task on Lambda and from the zip itself when tested.
    text = resources.files(__package__).joinpath(BUNDLED_CONFIG_NAME).read_text(encoding="utf-8")
    return EdgeConfig.from_dict(json.loads(text))


def respond(event: dict, load_config: Callable[[], EdgeConfig], now: float) -> dict:
    """The CloudFront result for one viewer-request event: the request to forward, or a response.

    Never raises: CloudFront turns a function error into a 5xx, and an error must deny, not leak.
    """
    try:
        config = load_config()
        request = event["Records"][0]["cf"]["request"]
        return authorize(request, config, now)
    except Exception as exc:  # any surprise (bad event, missing config) is a denial
        logger.error("edge auth: unexpected %s, denying", type(exc).__name__)
        return unauthorized(token_presented=True)


def authorize(request: dict, config: EdgeConfig, now: float) -> dict:
    headers = request["headers"]
    try:
        token = find_token(headers, config.cookie_name)
        if token is None:
            logger.warning("edge auth: 401 no_token")
            return unauthorized(token_presented=False)
        claims = decode_verified(token, config.keys)
        check_claims(claims, config, now)
        group = config.required_group(canonical_path(request["uri"]))
        if group is not None and group not in _groups(claims):
            raise Forbidden("missing_group")
    except InvalidToken as exc:
        logger.warning("edge auth: 401 %s", exc.reason)
        return unauthorized(token_presented=True)
    except Forbidden as exc:
        logger.warning("edge auth: 403 %s", exc.reason)
        return forbidden()
    strip_credentials(headers, config.cookie_name)
    return request


def find_token(headers: dict, cookie_name: str | None) -> str | None:
    """The bearer token of the Authorization header, else of the cookie; None when neither is sent.

    An Authorization header, when present, is the credential: a non-Bearer one is not silently
    replaced by the cookie. Several credentials of one kind are refused rather than picked from.
    """
    authorization = _header_values(headers, "authorization")
    if authorization:
        if len(authorization) != 1:
            raise InvalidToken("several_authorization_headers")
        scheme, _, credentials = authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise InvalidToken("not_bearer")
        return credentials.strip()
    if cookie_name is None:
        return None
    values = [
        value
        for header in _header_values(headers, "cookie")
        for name, value in _cookie_pairs(header)
        if name == cookie_name
    ]
    if len(values) > 1:
        raise InvalidToken("several_token_cookies")
    return values[0] if values else None


def check_claims(claims: dict, config: EdgeConfig, now: float) -> None:
    """Cognito claim rules: issuer, token_use, app client, and the validity window with leeway."""
    if claims.get("iss") != config.issuer:
        raise InvalidToken("wrong_issuer")
    if claims.get("token_use") != config.token_use:
        raise InvalidToken("wrong_token_use")
    # Cognito names the app client `aud` in ID tokens and `client_id` in access tokens.
    client_claim = "aud" if config.token_use == "id" else "client_id"
    if claims.get(client_claim) != config.app_client_id:
        raise InvalidToken("wrong_client")
    leeway = config.leeway_seconds
    if now >= _numeric_claim(claims, "exp", required=True) + leeway:
        raise InvalidToken("expired")
    for name in ("nbf", "iat"):
        not_before = _numeric_claim(claims, name, required=False)
        if not_before is not None and now + leeway < not_before:
            raise InvalidToken(f"{name}_in_future")


def canonical_path(uri: Any) -> str:
    """The object path S3 will resolve, for matching group rules.

    S3 percent-decodes the key, so `/%72eports/x` is `/reports/x` and must match that rule.
    Dot segments are refused outright rather than resolved, so a rule cannot be walked around.
    """
    if not isinstance(uri, str) or not uri.startswith("/"):
        raise Forbidden("bad_uri")
    try:
        path = unquote(uri, errors="strict")
    except UnicodeDecodeError as exc:
        raise Forbidden("bad_uri") from exc
    if any(segment in (".", "..") for segment in path.split("/")):
        raise Forbidden("dot_segment")
    return path


def strip_credentials(headers: dict, cookie_name: str | None) -> None:
    """Drop the token from the forwarded request: the origin never needs to see it."""
    headers.pop("authorization", None)
    if cookie_name is None or "cookie" not in headers:
        return
    kept = []
    for entry in headers["cookie"]:
        pairs = [pair for pair in entry["value"].split(";") if pair.split("=", 1)[0].strip() != cookie_name]
        value = ";".join(pairs).strip()
        if value:
            kept.append({"key": entry.get("key", "Cookie"), "value": value})
    if kept:
        headers["cookie"] = kept
    else:
        del headers["cookie"]


def unauthorized(token_presented: bool) -> dict:
    # RFC 6750: a challenge alone when no credential came, error="invalid_token" when one failed;
    # which check failed is only logged.
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if token_presented else "")
    return _response(
        "401", "Unauthorized", "Sign in to read this resource.\n", {"www-authenticate": ("WWW-Authenticate", challenge)}
    )


def forbidden() -> dict:
    return _response("403", "Forbidden", "You do not have access to this resource.\n", {})


def _response(status: str, description: str, body: str, extra: dict[str, tuple[str, str]]) -> dict:
    headers = {
        "content-type": ("Content-Type", "text/plain; charset=utf-8"),
        "cache-control": ("Cache-Control", "no-store"),
        **extra,
    }
    return {
        "status": status,
        "statusDescription": description,
        "headers": {name: [{"key": key, "value": value}] for name, (key, value) in headers.items()},
        "body": body,
    }


def _header_values(headers: dict, name: str) -> list[str]:
    entries = headers.get(name, [])
    well_formed = isinstance(entries, list) and all(
        isinstance(entry, dict) and isinstance(entry.get("value"), str) for entry in entries
    )
    if not well_formed:
        raise InvalidToken("bad_header_shape")
    return [entry["value"] for entry in entries]


def _cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs


def _numeric_claim(claims: dict, name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    # bool is an int in Python, and `true` is no timestamp.
    finite_number = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite_number:
        raise InvalidToken(f"bad_{name}")
    return value


def _groups(claims: dict) -> list[str]:
    groups = claims.get(GROUPS_CLAIM)
    if not isinstance(groups, list):
        return []
    return [group for group in groups if isinstance(group, str)]
