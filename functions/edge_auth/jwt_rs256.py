"""RS256 JSON Web Token verification in pure Python, small enough for a Lambda@Edge package.

Used by the edge auth handler: it turns a compact JWT into its claims only when the header asks
for RS256, names a bundled key, and the RSASSA-PKCS1-v1_5 signature verifies. No third-party
dependency: a viewer-request function must stay under 1 MB, and the native `cryptography` wheel
alone is several times that. Claim checks (issuer, audience, expiry) belong to the caller.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

# ASN.1 DER DigestInfo header for SHA-256 (RFC 8017, section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
MAX_TOKEN_LENGTH = 8192
MIN_MODULUS_BITS = 2048
# At most this many (key, token) verdicts are remembered: about 2 MB even with 8 KB tokens.
VERIFIED_CACHE_SIZE = 256


class InvalidToken(Exception):
    """The token is not acceptable; `reason` is a short code for logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url, accepting only the canonical encoding of the bytes.

    Refusing non-canonical spellings (stray padding bits, '=' padding, other alphabets) makes a
    valid token the only spelling of itself, so no altered string is ever accepted.
    """
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("bad_base64")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("bad_base64") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise InvalidToken("bad_base64")
    return raw


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers could disagree on which duplicate wins; refuse to pick one.
            raise InvalidToken("duplicate_member")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidToken("bad_json")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Strict JSON object: UTF-8, no duplicate members, no NaN/Infinity."""
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidToken("bad_json") from exc
    if not isinstance(value, dict):
        raise InvalidToken("bad_json")
    return value


@dataclass(frozen=True)
class RsaPublicKey:
    """One RSA signing key of a JWKS, as the integers the verification needs."""

    kid: str
    n: int
    e: int

    @property
    def size(self) -> int:
        """Modulus length in bytes; every valid signature has exactly this length."""
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> "RsaPublicKey":
        """Validate a JWK (RFC 7517/7518) meant for RS256 signatures; raises ValueError."""
        if not isinstance(jwk, Mapping):
            raise ValueError("each JWKS key must be an object")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError("each JWKS key needs a non-empty string 'kid'")
        if jwk.get("kty") != "RSA":
            raise ValueError(f"JWKS key {kid!r}: kty must be 'RSA'")
        if jwk.get("use", "sig") != "sig":
            raise ValueError(f"JWKS key {kid!r}: use must be 'sig'")
        if jwk.get("alg", "RS256") != "RS256":
            raise ValueError(f"JWKS key {kid!r}: alg must be 'RS256'")
        if "d" in jwk or "p" in jwk:
            raise ValueError(f"JWKS key {kid!r} contains private key material; bundle public keys only")
        try:
            n = int.from_bytes(b64url_decode(jwk["n"]), "big")
            e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        except (KeyError, TypeError, InvalidToken) as exc:
            raise ValueError(f"JWKS key {kid!r}: 'n' and 'e' must be base64url strings") from exc
        if n.bit_length() < MIN_MODULUS_BITS:
            raise ValueError(f"JWKS key {kid!r}: modulus has {n.bit_length()} bits, at least {MIN_MODULUS_BITS} needed")
        if e < 3 or e % 2 == 0 or e >= n:
            raise ValueError(f"JWKS key {kid!r}: exponent must be odd and at least 3")
        return cls(kid=kid, n=n, e=e)

    def to_jwk(self) -> dict[str, str]:
        def encode(value: int) -> str:
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": encode(self.n), "e": encode(self.e)}

    def verify(self, message: bytes, signature: bytes) -> bool:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.2).

        The recovered block is compared whole against the one expected encoding, in constant time,
        instead of being parsed: parsing is where the known PKCS#1 v1.5 forgeries live.
        """
        k = self.size
        if len(signature) != k:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        recovered = pow(s, self.e, self.n).to_bytes(k, "big")
        digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
        return hmac.compare_digest(recovered, expected)


def decode_verified(token: str, keys: Mapping[str, RsaPublicKey]) -> dict[str, Any]:
    """Return the claims of an RS256 compact JWS signed by one of `keys`; raise InvalidToken otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("bad_length")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not_compact_jws")
    header_segment, payload_segment, signature_segment = parts
    header = parse_json_object(b64url_decode(header_segment))
    # Decoded (and so checked to be base64url, hence ASCII) before anything else touches it: the signing
    # input is encoded as ASCII, and a non-ASCII payload must be an invalid token, not an exception.
    payload = b64url_decode(payload_segment)
    # The algorithm is fixed by us, not chosen by the token: this is what stops "none" and
    # HS256-with-the-public-key before any key is looked at.
    if header.get("alg") != "RS256":
        raise InvalidToken("alg_not_allowed")
    if "crit" in header:
        raise InvalidToken("crit_not_supported")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise InvalidToken("unknown_kid")
    if not _signature_valid(keys[kid], f"{header_segment}.{payload_segment}", signature_segment):
        raise InvalidToken("bad_signature")
    return parse_json_object(payload)


@functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def _signature_valid(key: RsaPublicKey, signing_input: str, signature_segment: str) -> bool:
    """Memoised per container, keyed by the exact key and token: one analyst's page view fetches
    many objects with one token, and the pure-Python modular exponentiation is most of a request's
    cost (see bench/edge_auth_bench.py)."""
    return key.verify(signing_input.encode("ascii"), b64url_decode(signature_segment))
