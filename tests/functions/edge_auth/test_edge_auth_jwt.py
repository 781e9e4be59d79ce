"""The pure-Python RS256 verifier against `cryptography`, and against known PKCS#1 v1.5 forgeries."""
from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from functions.edge_auth.jwt_rs256 import InvalidToken, RsaPublicKey, b64url_decode, decode_verified

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def key_of(private_key, kid="k1"):
    numbers = private_key.public_key().public_numbers()
    return RsaPublicKey(kid=kid, n=numbers.n, e=numbers.e)


def integer_cube_root_ceiling(value: int) -> int:
    # Newton's method from a power of two above the root converges to floor(cbrt(value)).
    root = 1 << ((value.bit_length() + 2) // 3)
    while True:
        better = (2 * root + value // (root * root)) // 3
        if better >= root:
            break
        root = better
    while root**3 < value:
        root += 1
    return root


def test_signatures_made_by_cryptography_verify_and_tampering_does_not(pool_key):
    key = key_of(pool_key)
    message = b"header.payload"
    signature = pool_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    assert key.verify(message, signature)
    assert not key.verify(b"header.payloae", signature)
    assert not key.verify(message, signature[:-1] + bytes([signature[-1] ^ 1]))


def test_signatures_of_the_wrong_length_or_not_below_the_modulus_fail(pool_key):
    key = key_of(pool_key)
    message = b"header.payload"
    signature = pool_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    assert not key.verify(message, b"\x00" + signature)  # same integer, one byte longer
    assert not key.verify(message, signature[1:])
    assert not key.verify(message, key.n.to_bytes(key.size, "big"))


@pytest.fixture(scope="module")
def roomy_key():
    """A 2048-bit key with n < 3 * 2**2046: over a third of its signatures s still fit in k bytes as s + n."""
    for _ in range(100):  # about half of generated keys qualify
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if private_key.public_key().public_numbers().n < 3 << 2046:
            return private_key
    pytest.fail("no 2048-bit key with n < 3 * 2**2046 in 100 tries")


def test_a_signature_plus_the_modulus_fails_although_it_is_the_same_value_mod_n(roomy_key):
    key = key_of(roomy_key)
    checked = []

    @given(message=st.binary(min_size=1, max_size=64))
    def check(message):
        signature = roomy_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        plus_n = int.from_bytes(signature, "big") + key.n
        assume(plus_n.bit_length() <= key.size * 8)  # s + n fits in k bytes for this message's signature

        assert key.verify(message, signature)
        assert not key.verify(message, plus_n.to_bytes(key.size, "big"))
        checked.append(message)

    check()

    assert len(checked) >= settings.default.max_examples // 2


def test_pkcs1_signature_with_sha1_digest_info_fails(pool_key):
    message = b"header.payload"
    signature = pool_key.sign(message, padding.PKCS1v15(), hashes.SHA1())

    assert not key_of(pool_key).verify(message, signature)


def test_bleichenbacher_e3_forgery_with_trailing_garbage_is_rejected():
    """With e=3 a cube root yields a block that *starts* right; only a whole-block compare rejects it."""
    private_key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    key = key_of(private_key)
    message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdHRhY2tlciJ9"
    prefix = b"\x00\x01\xff\x00" + SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    garbage_bits = (key.size - len(prefix)) * 8
    forged = integer_cube_root_ceiling(int.from_bytes(prefix, "big") << garbage_bits)
    recovered = pow(forged, 3, key.n).to_bytes(key.size, "big")
    # The forgery is real: a parser that stops after the digest would accept it.
    assert recovered.startswith(prefix)

    assert not key.verify(message, forged.to_bytes(key.size, "big"))


def test_canonical_base64url_only():
    assert b64url_decode("QUJD") == b"ABC"
    assert b64url_decode("QUI") == b"AB"
    for bad in ("QUJ=", "QUJD=", "QUK", "Q", "QU+D", "QU/D", "QU D", "QUJDé"):
        with pytest.raises(InvalidToken):
            b64url_decode(bad)


def test_jwk_validation(pool_key, make_public_jwk):
    jwk = make_public_jwk(pool_key, "k1")
    assert RsaPublicKey.from_jwk(jwk) == key_of(pool_key)
    assert RsaPublicKey.from_jwk(RsaPublicKey.from_jwk(jwk).to_jwk()) == key_of(pool_key)

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_numbers = pool_key.private_numbers()
    bad_jwks = {
        "1024-bit": make_public_jwk(small, "k1"),
        "kty EC": {**jwk, "kty": "EC"},
        "use enc": {**jwk, "use": "enc"},
        "alg RS512": {**jwk, "alg": "RS512"},
        "no kid": {k: v for k, v in jwk.items() if k != "kid"},
        "private d": {**jwk, "d": hex(private_numbers.d)},
        "e even": {**jwk, "e": "AQAA"},
        "n padded": {**jwk, "n": jwk["n"] + "="},
    }
    accepted = []
    for name, bad in bad_jwks.items():
        try:
            RsaPublicKey.from_jwk(bad)
            accepted.append(name)
        except ValueError:
            pass
    assert accepted == []


def test_decode_verified_returns_the_claims(pool_key, tokens):
    token = tokens.id_token()

    claims = decode_verified(token, {"test-key-1": key_of(pool_key, "test-key-1")})

    assert claims["cognito:username"] == "a.analyst"
    with pytest.raises(InvalidToken) as raised:
        decode_verified(token, {"other": key_of(pool_key, "other")})
    assert raised.value.reason == "unknown_kid"


def test_duplicate_claims_are_refused(pool_key, tokens):
    signing_input = tokens.unsigned({"kid": "test-key-1", "alg": "RS256"}, {})
    header_segment = signing_input.split(".")[0]
    payload = urlsafe_b64encode(b'{"iss":"a","iss":"b"}').rstrip(b"=").decode()
    signed = f"{header_segment}.{payload}".encode()
    signature = urlsafe_b64encode(pool_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())).rstrip(b"=").decode()

    with pytest.raises(InvalidToken) as raised:
        decode_verified(f"{header_segment}.{payload}.{signature}", {"test-key-1": key_of(pool_key, "test-key-1")})
    assert raised.value.reason == "duplicate_member"
