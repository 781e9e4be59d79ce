"""Configuration of the edge auth function: Cognito pool, app client, group rules and JWKS.

Lambda@Edge has no environment variables, so `advising edge build` validates this object from a
JSON file and bundles its normalised form (`edge_config.json`) into the function's zip; the
handler parses the same JSON with the same code once per container.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from .jwt_rs256 import RsaPublicKey

BUNDLED_CONFIG_NAME = "edge_config.json"
TOKEN_USES = ("id", "access")
MAX_LEEWAY_SECONDS = 300

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_POOL_SUFFIX = re.compile(r"_[A-Za-z0-9]+")
_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,128}")
# RFC 6265 cookie-name: an RFC 7230 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_GROUP = re.compile(r"[\w+=,.@-]{1,128}")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_KNOWN_FIELDS = {
    "region", "user_pool_id", "app_client_id", "token_use", "group_rules", "cookie_name", "leeway_seconds", "jwks"
}


class ConfigError(ValueError):
    """The configuration is unusable; the message says which field and why, in one line."""


@dataclass(frozen=True)
class EdgeConfig:
    region: str
    user_pool_id: str
    app_client_id: str
    token_use: str
    # (path prefix, required group), longest prefix first so the most specific rule wins.
    group_rules: tuple[tuple[str, str], ...]
    cookie_name: str | None
    leeway_seconds: int
    keys: Mapping[str, RsaPublicKey]

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    def required_group(self, path: str) -> str | None:
        for prefix, group in self.group_rules:
            if path.startswith(prefix):
                return group
        return None

    @classmethod
    def from_dict(cls, raw: Any) -> "EdgeConfig":
        """Validate a configuration with an inline JWKS ({"keys": [...]}); raises ConfigError."""
        if not isinstance(raw, Mapping):
            raise ConfigError("the configuration must be a JSON object")
        unknown = sorted(set(raw) - _KNOWN_FIELDS)
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(_KNOWN_FIELDS))}")
        region = _required_str(raw, "region")
        if not _REGION.fullmatch(region):
            raise ConfigError(f"region {region!r} is not an AWS region name such as 'eu-west-1'")
        pool = _required_str(raw, "user_pool_id")
        if not (pool.startswith(region) and _POOL_SUFFIX.fullmatch(pool[len(region):])):
            raise ConfigError(f"user_pool_id {pool!r} must look like '{region}_AbC123' (same region)")
        client = _required_str(raw, "app_client_id")
        if not _CLIENT_ID.fullmatch(client):
            raise ConfigError(f"app_client_id {client!r} must be 1-128 letters and digits")
        token_use = raw.get("token_use")
        if token_use not in TOKEN_USES:
            raise ConfigError(f"token_use must be one of {', '.join(TOKEN_USES)}, not {token_use!r}")
        cookie_name = raw.get("cookie_name")
        if cookie_name is not None and not (isinstance(cookie_name, str) and _COOKIE_NAME.fullmatch(cookie_name)):
            raise ConfigError(f"cookie_name {cookie_name!r} is not a valid cookie name")
        leeway = raw.get("leeway_seconds", 30)
        if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ConfigError(f"leeway_seconds must be an integer from 0 to {MAX_LEEWAY_SECONDS}, not {leeway!r}")
        return cls(
            region=region,
            user_pool_id=pool,
            app_client_id=client,
            token_use=token_use,
            group_rules=_group_rules(raw.get("group_rules", {})),
            cookie_name=cookie_name,
            leeway_seconds=leeway,
            keys=_keys(raw.get("jwks")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The normalised JSON form that is bundled; from_dict(to_dict()) gives the same config."""
        return {
            "region": self.region,
            "user_pool_id": self.user_pool_id,
            "app_client_id": self.app_client_id,
            "token_use": self.token_use,
            "group_rules": dict(sorted(self.group_rules)),
            "cookie_name": self.cookie_name,
            "leeway_seconds": self.leeway_seconds,
            "jwks": {"keys": [self.keys[kid].to_jwk() for kid in sorted(self.keys)]},
        }


def _required_str(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} is required and must be a non-empty string")
    return value


def _group_rules(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError('group_rules must be an object of path prefix -> group, e.g. {"/reports/": "analysts"}')
    rules = []
    for prefix, group in raw.items():
        if not (isinstance(prefix, str) and prefix.startswith("/")):
            raise ConfigError(f"group_rules prefix {prefix!r} must start with '/'")
        # Rules are matched on the decoded path, and paths with dot segments are refused before matching
        # (handler.canonical_path): a rule spelled with either could never match, so it would protect nothing.
        if _PERCENT_ESCAPE.search(prefix):
            raise ConfigError(
                f"group_rules prefix {prefix!r} contains a %-escape; write the decoded path (rules match decoded paths)"
            )
        if any(segment in (".", "..") for segment in prefix.split("/")):
            raise ConfigError(
                f"group_rules prefix {prefix!r} contains a '.' or '..' segment; write the path without dot segments "
                "(such paths are refused, so the rule could never match)"
            )
        if not (isinstance(group, str) and _GROUP.fullmatch(group)):
            raise ConfigError(f"group_rules[{prefix!r}] must be a Cognito group name, not {group!r}")
        rules.append((prefix, group))
    return tuple(sorted(rules, key=lambda rule: (-len(rule[0]), rule[0])))


def _keys(jwks: Any) -> Mapping[str, RsaPublicKey]:
    if not (isinstance(jwks, Mapping) and isinstance(jwks.get("keys"), list) and jwks["keys"]):
        raise ConfigError('jwks must be a JWKS object {"keys": [...]} with at least one key')
    keys: dict[str, RsaPublicKey] = {}
    for jwk in jwks["keys"]:
        try:
            key = RsaPublicKey.from_jwk(jwk)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if key.kid in keys:
            raise ConfigError(f"JWKS key id {key.kid!r} appears twice")
        keys[key.kid] = key
    return MappingProxyType(keys)
