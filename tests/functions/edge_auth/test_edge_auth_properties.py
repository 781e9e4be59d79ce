"""Property tests: whatever a viewer sends, the handler answers 401/403 and never raises or lets it through."""
from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.edge_auth.handler import authorize, respond

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PROPERTY_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def b64url_json(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
claims = st.dictionaries(
    st.sampled_from(["iss", "aud", "client_id", "token_use", "exp", "nbf", "iat", "cognito:groups", "sub"]) | st.text(max_size=8),
    json_values,
    max_size=8,
)
headers_json = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "none", "HS256", "RS512", "ES256", "", "rs256"]) | json_values,
        "kid": st.sampled_from(["test-key-1", "other"]) | json_values,
        "typ": st.just("JWT"),
        "crit": json_values,
    },
)
jwt_shaped = st.builds(
    lambda header, payload, signature: f"{b64url_json(header)}.{b64url_json(payload)}.{signature}",
    headers_json,
    claims,
    st.text(alphabet=B64URL_ALPHABET, max_size=400),
)
credential = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=B64URL_ALPHABET + ".", max_size=600),
    jwt_shaped,
)
authorization_value = st.one_of(
    st.builds(lambda scheme, token: f"{scheme} {token}", st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Bearer "]), credential),
    st.text(max_size=100),
)
cookie_value = st.one_of(
    st.builds(lambda token: f"reports_token={token}", credential),
    st.lists(st.tuples(st.sampled_from(["reports_token", "a", " reports_token", ""]), credential), max_size=4).map(
        lambda pairs: "; ".join(f"{name}={value}" for name, value in pairs)
    ),
    st.text(max_size=100),
)
cloudfront_headers = st.fixed_dictionaries(
    {},
    optional={
        "authorization": st.lists(authorization_value.map(lambda v: {"key": "Authorization", "value": v}), max_size=3),
        "cookie": st.lists(cookie_value.map(lambda v: {"key": "Cookie", "value": v}), max_size=3),
    },
)
uris = st.one_of(st.sampled_from(["/reports/a.parquet", "/extracts/restricted/b.parquet", "/index.html"]), st.text(max_size=40))


@PROPERTY_SETTINGS
@given(headers=cloudfront_headers, uri=uris)
def test_random_credentials_never_pass_and_never_raise(headers, uri, edge_config, now):
    request = {"clientIp": "203.0.113.178", "headers": headers, "method": "GET", "querystring": "", "uri": uri}

    # authorize itself, without respond's safety net: well-formed events must never reach it.
    result = authorize(request, edge_config, now)

    assert result.get("status") in ("401", "403")


@PROPERTY_SETTINGS
@given(event=json_values)
def test_arbitrary_events_are_denied(event, edge_config, now):
    assert respond(event, lambda: edge_config, now)["status"] == "401"


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_one_character_change_to_a_valid_token_is_rejected(data, edge_config, tokens, viewer_request, now):
    token = tokens.id_token()
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from(B64URL_ALPHABET + ".").filter(lambda c: c != token[position]))
    altered = token[:position] + replacement + token[position + 1 :]

    response = respond(viewer_request(authorization=f"Bearer {altered}"), lambda: edge_config, now)

    assert response["status"] == "401"


@PROPERTY_SETTINGS
@given(cookies=st.lists(st.text(max_size=60).filter(lambda v: "reports_token" not in v), max_size=3))
def test_a_valid_token_passes_whatever_unrelated_cookies_come_with_it(cookies, edge_config, tokens, viewer_request, now):
    event = viewer_request(authorization=f"Bearer {tokens.id_token()}", cookie=cookies)

    result = respond(event, lambda: edge_config, now)

    assert "status" not in result and "authorization" not in result["headers"]
