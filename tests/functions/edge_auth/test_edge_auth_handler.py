"""The viewer-request handler on CloudFront's event shape, with tokens signed by real RSA keys."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization

from functions.edge_auth.config import EdgeConfig
from functions.edge_auth.handler import respond

OTHER_POOL_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OtherPool"
CHALLENGE = 'Bearer realm="reports"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="reports", error="invalid_token"'


def run(event, config, now):
    return respond(event, lambda: config, now)


def request_of(event):
    return event["Records"][0]["cf"]["request"]


def header(response, name):
    return [entry["value"] for entry in response["headers"].get(name, [])]


def assert_denied(response, status):
    assert response.get("status") == status, response
    assert header(response, "cache-control") == ["no-store"]
    assert header(response, "content-type") == ["text/plain; charset=utf-8"]
    assert response["body"]
    if status == "401":
        assert header(response, "www-authenticate") == [INVALID_TOKEN_CHALLENGE]


def bearer(token):
    return f"Bearer {token}"


def hs256_token(header_and_claims: str, secret: bytes) -> str:
    from base64 import urlsafe_b64encode

    mac = hmac.new(secret, header_and_claims.encode(), hashlib.sha256).digest()
    return f"{header_and_claims}.{urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_valid_id_token_is_forwarded_without_its_authorization_header(edge_config, tokens, viewer_request, now):
    event = viewer_request(authorization=bearer(tokens.id_token()))
    sent = copy.deepcopy(request_of(event))

    result = run(event, edge_config, now)

    assert "status" not in result
    assert "authorization" not in result["headers"]
    expected = {**sent, "headers": {k: v for k, v in sent["headers"].items() if k != "authorization"}}
    assert result == expected


def test_valid_access_token_is_forwarded_when_access_tokens_are_configured(pool_config_dict, tokens, viewer_request, now):
    config = EdgeConfig.from_dict({**pool_config_dict, "token_use": "access"})
    token = tokens.sign(tokens.access_claims())

    result = run(viewer_request(authorization=bearer(token)), config, now)

    assert result["uri"] == "/reports/2026/advisor_daily_load.parquet"
    assert "authorization" not in result["headers"]


def test_token_in_the_cookie_is_accepted_and_only_that_cookie_is_removed(edge_config, tokens, viewer_request, now):
    cookie = f"theme=dark; reports_token={tokens.id_token()}; lang=en"

    result = run(viewer_request(cookie=cookie), edge_config, now)

    assert result["headers"]["cookie"] == [{"key": "Cookie", "value": "theme=dark; lang=en"}]


def test_the_only_cookie_being_the_token_drops_the_cookie_header(edge_config, tokens, viewer_request, now):
    result = run(viewer_request(cookie=f"reports_token={tokens.id_token()}"), edge_config, now)

    assert "cookie" not in result["headers"]


def test_expiry_and_not_before_allow_the_configured_leeway(edge_config, tokens, viewer_request, now):
    leeway = edge_config.leeway_seconds
    just_expired = tokens.id_token(exp=now - leeway + 1)
    almost_valid = tokens.id_token(nbf=now + leeway - 1, iat=now + leeway - 1)

    for token in (just_expired, almost_valid):
        assert "status" not in run(viewer_request(authorization=bearer(token)), edge_config, now)


def test_no_token_gets_a_bare_bearer_challenge(edge_config, viewer_request, now):
    response = run(viewer_request(), edge_config, now)

    assert response["status"] == "401"
    assert response["statusDescription"] == "Unauthorized"
    assert header(response, "www-authenticate") == [CHALLENGE]
    assert header(response, "cache-control") == ["no-store"]


# Each case builds an Authorization header value from (tokens, stranger_key, now).
REJECTED_TOKENS = {
    "expired": lambda t, k, now: bearer(t.id_token(exp=now - 31)),
    "not_yet_valid": lambda t, k, now: bearer(t.id_token(nbf=now + 31)),
    "issued_in_the_future": lambda t, k, now: bearer(t.id_token(iat=now + 120)),
    "wrong_issuer": lambda t, k, now: bearer(t.id_token(iss=OTHER_POOL_ISSUER)),
    "issuer_with_trailing_slash": lambda t, k, now: bearer(t.id_token(iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool1/")),
    "wrong_audience": lambda t, k, now: bearer(t.id_token(aud="someotherclient0000000000")),
    "audience_as_list": lambda t, k, now: bearer(t.id_token(aud=["4testclient0id0abcdefghijk"])),
    "access_token_where_id_token_required": lambda t, k, now: bearer(t.sign(t.access_claims())),
    "token_use_missing": lambda t, k, now: bearer(t.sign({c: v for c, v in t.id_claims().items() if c != "token_use"})),
    "exp_missing": lambda t, k, now: bearer(t.sign({c: v for c, v in t.id_claims().items() if c != "exp"})),
    "exp_as_bool": lambda t, k, now: bearer(t.id_token(exp=True)),
    "exp_as_string": lambda t, k, now: bearer(t.id_token(exp=str(now + 3600))),
    "nbf_as_string": lambda t, k, now: bearer(t.id_token(nbf="0")),
    "unknown_kid": lambda t, k, now: bearer(t.sign(t.id_claims(), header={"kid": "rotated-away", "alg": "RS256"})),
    "kid_missing": lambda t, k, now: bearer(t.sign(t.id_claims(), header={"alg": "RS256"})),
    "signed_by_another_key": lambda t, k, now: bearer(t.sign(t.id_claims(), key=k)),
    "crit_header": lambda t, k, now: bearer(t.sign(t.id_claims(), header={"kid": "test-key-1", "alg": "RS256", "crit": ["exp"]})),
    "alg_none": lambda t, k, now: bearer(t.unsigned({"kid": "test-key-1", "alg": "none"}, t.id_claims()) + "."),
    "alg_none_keeping_a_real_signature": lambda t, k, now: bearer(
        t.unsigned({"kid": "test-key-1", "alg": "none"}, t.id_claims()) + "." + t.id_token().rsplit(".", 1)[1]
    ),
    "alg_lowercase": lambda t, k, now: bearer(t.sign(t.id_claims(), header={"kid": "test-key-1", "alg": "rs256"})),
    "hs256_with_public_key_pem": lambda t, k, now: bearer(
        hs256_token(
            t.unsigned({"kid": "test-key-1", "alg": "HS256"}, t.id_claims()),
            t.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        )
    ),
    "hs256_with_public_key_der": lambda t, k, now: bearer(
        hs256_token(
            t.unsigned({"kid": "test-key-1", "alg": "HS256"}, t.id_claims()),
            t.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
        )
    ),
    "payload_swapped_after_signing": lambda t, k, now: bearer(
        ".".join([t.id_token().split(".")[0], t.id_token(**{"cognito:groups": ["admins"]}).split(".")[1], t.id_token().split(".")[2]])
    ),
    "signature_stripped": lambda t, k, now: bearer(t.id_token().rsplit(".", 1)[0] + "."),
    "two_segments": lambda t, k, now: bearer(t.id_token().rsplit(".", 1)[0]),
    "four_segments": lambda t, k, now: bearer(t.id_token() + ".AAAA"),
    "not_base64": lambda t, k, now: bearer("e30*.e30.e30"),
    "padded_base64": lambda t, k, now: bearer(t.id_token() + "=="),
    "header_not_json": lambda t, k, now: bearer("bm90IGpzb24.e30.AAAA"),
    "header_is_a_json_array": lambda t, k, now: bearer("WyJSUzI1NiJd.e30.AAAA"),
    # Issue 15: a non-ASCII payload segment once escaped the verifier as UnicodeEncodeError (an ERROR line).
    "payload_not_ascii": lambda t, k, now: bearer(
        ".".join([t.id_token().split(".")[0], "ZXlK\u00e9", t.id_token().split(".")[2]])
    ),
    "oversized_but_validly_signed": lambda t, k, now: bearer(t.id_token(padding="x" * 9000)),
    "basic_scheme": lambda t, k, now: "Basic YW5hbHlzdDpodW50ZXIy",
    "bearer_without_token": lambda t, k, now: "Bearer ",
    "two_authorization_headers": lambda t, k, now: [bearer(t.id_token()), bearer(t.id_token())],
}


@pytest.mark.parametrize("case", sorted(REJECTED_TOKENS))
def test_rejected_tokens_get_401(case, edge_config, tokens, stranger_key, viewer_request, now, caplog):
    authorization = REJECTED_TOKENS[case](tokens, stranger_key, now)

    response = run(viewer_request(authorization=authorization), edge_config, now)

    assert_denied(response, "401")
    # A bad token is an expected event: one WARNING with its reason, never an ERROR (kept for real faults).
    logged = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert len(logged) == 1 and logged[0][0] == "WARNING" and logged[0][1].startswith("edge auth: 401 "), logged


def test_access_token_for_another_app_client_gets_401(pool_config_dict, tokens, viewer_request, now):
    config = EdgeConfig.from_dict({**pool_config_dict, "token_use": "access"})
    token = tokens.sign(tokens.access_claims(client_id="someotherclient0000000000"))

    assert_denied(run(viewer_request(authorization=bearer(token)), config, now), "401")


def test_a_token_that_would_pass_proves_the_rejections_are_about_their_one_defect(edge_config, tokens, viewer_request, now):
    # Every rejected case above differs from this token in one respect only.
    assert "status" not in run(viewer_request(authorization=bearer(tokens.id_token())), edge_config, now)


def test_two_token_cookies_are_refused(edge_config, tokens, viewer_request, now):
    cookies = [f"reports_token={tokens.id_token()}", f"reports_token={tokens.id_token()}"]

    assert_denied(run(viewer_request(cookie=cookies), edge_config, now), "401")


def test_an_authorization_header_is_not_replaced_by_the_cookie(edge_config, tokens, viewer_request, now):
    event = viewer_request(authorization="Basic YW5hbHlzdDpodW50ZXIy", cookie=f"reports_token={tokens.id_token()}")

    assert_denied(run(event, edge_config, now), "401")


def test_cookie_is_ignored_when_no_cookie_name_is_configured(pool_config_dict, tokens, viewer_request, now):
    config = EdgeConfig.from_dict({**pool_config_dict, "cookie_name": None})

    response = run(viewer_request(cookie=f"reports_token={tokens.id_token()}"), config, now)

    assert response["status"] == "401"
    assert header(response, "www-authenticate") == [CHALLENGE]


def test_denials_do_not_say_which_check_failed(edge_config, tokens, stranger_key, viewer_request, now):
    responses = [
        run(viewer_request(authorization=REJECTED_TOKENS[case](tokens, stranger_key, now)), edge_config, now)
        for case in ("expired", "wrong_issuer", "signed_by_another_key", "unknown_kid", "alg_none", "not_base64")
    ]

    assert all(response == responses[0] for response in responses)
    assert json.dumps(responses[0]).count("expired") == 0


@pytest.mark.parametrize(
    ("uri", "groups", "status"),
    [
        ("/reports/2026/x.parquet", ["advisors"], "403"),
        ("/reports/2026/x.parquet", [], "403"),
        ("/reports/2026/x.parquet", None, "403"),
        ("/reports/2026/x.parquet", "analysts", "403"),  # a string is not a group list
        ("/extracts/restricted/pii.parquet", ["analysts"], "403"),  # the longest prefix decides
        ("/extracts/restricted/pii.parquet", ["data-stewards"], None),
        ("/extracts/daily.parquet", ["analysts"], None),
        ("/index.html", [], None),  # no rule: any valid token
        ("/%72eports/2026/x.parquet", [], "403"),  # S3 decodes %72 to "r"
        ("/reports%2F2026/x.parquet", ["advisors"], "403"),
        ("/public/../reports/2026/x.parquet", [], "403"),
        ("/public/%2e%2e/reports/x.parquet", [], "403"),
        ("/reports/./x.parquet", ["analysts"], "403"),
        ("/%ff%fe", ["analysts"], "403"),
    ],
)
def test_group_rules_by_path(uri, groups, status, edge_config, tokens, viewer_request, now):
    token = tokens.id_token(**{"cognito:groups": groups})

    response = run(viewer_request(uri, authorization=bearer(token)), edge_config, now)

    if status is None:
        assert response["uri"] == uri and "status" not in response
    else:
        assert response["status"] == status
        assert response["statusDescription"] == "Forbidden"
        assert header(response, "cache-control") == ["no-store"]
        assert "www-authenticate" not in response["headers"]


def test_paths_without_a_rule_still_need_a_valid_token(edge_config, viewer_request, now):
    assert run(viewer_request("/index.html"), edge_config, now)["status"] == "401"


@pytest.mark.parametrize(
    "event",
    [{}, {"Records": []}, {"Records": [{"cf": {}}]}, {"Records": [{"cf": {"request": {"uri": "/reports/x"}}}]}, None],
)
def test_malformed_events_are_denied_not_raised(event, edge_config, now):
    assert run(event, edge_config, now)["status"] == "401"


def test_a_configuration_that_cannot_load_denies_everything(tokens, viewer_request, now):
    def broken_loader():
        raise FileNotFoundError("edge_config.json")

    response = respond(viewer_request(authorization=bearer(tokens.id_token())), broken_loader, now)

    assert response["status"] == "401"


def test_a_remembered_verdict_is_tied_to_the_key_that_gave_it(pool_config_dict, edge_config, stranger_key, make_public_jwk, tokens, viewer_request, now):
    # Same kid, different key: a token verified under the pool's key must be checked afresh.
    rotated = EdgeConfig.from_dict({**pool_config_dict, "jwks": {"keys": [make_public_jwk(stranger_key, "test-key-1")]}})
    token = tokens.id_token()

    assert "status" not in run(viewer_request(authorization=bearer(token)), edge_config, now)
    assert run(viewer_request(authorization=bearer(token)), rotated, now)["status"] == "401"
    assert "status" not in run(viewer_request(authorization=bearer(token)), edge_config, now)
