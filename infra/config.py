"""Deployment configuration: CDK context, validated once, with its defaults in cdk.json.

cdk.json is the one home of every default and of its documentation (the ``kit:doc`` entry).
The CDK CLI passes that context to ``app.py``; ``python app.py`` without the CLI reads the
same file through :func:`cdk_json_context`, so both paths synthesize the same stack. ``-c
kit:key=value`` on the CLI overrides a default. Nothing here calls AWS or git.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from constructs import Construct

from functions.core.kit_app import AppError, AppManifest, load_manifest

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = REPO_ROOT / "cdk.json"
PREFIX: Final = "kit:"

MfaMode = Literal["optional", "required"]
ThreatProtection = Literal["off", "audit", "enforced"]

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_STAGE_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# Cognito domain prefixes: lowercase letters, digits and hyphens, and never the reserved words.
_DOMAIN_PREFIX_RE: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_RESERVED_PREFIX_WORDS: Final = ("aws", "amazon", "cognito")
_HOST_RE: Final = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ACM_ARN_RE: Final = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
# Cognito group names: 1-128 characters of \p{L}\p{M}\p{S}\p{N}\p{P} (no whitespace here).
_GROUP_RE: Final = re.compile(r"^[^\s]{1,128}$")
_ORIGIN_RE: Final = re.compile(r"^https://[a-z0-9.-]+(?::\d{1,5})?$|^http://(?:localhost|127\.0\.0\.1)(?::\d{1,5})?$")


class ConfigError(ValueError):
    """A context value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class Throttle:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class CustomDomain:
    host_name: str
    certificate_arn: str


@dataclass(frozen=True)
class KitConfig:
    stage_name: str
    resource_name: str
    cognito_domain_prefix: str | None
    custom_domain: CustomDomain | None
    access_token_minutes: int
    id_token_minutes: int
    refresh_token_days: int
    auth_session_minutes: int
    grant_cache_seconds: int
    registration_policy: str
    allowed_origins: tuple[str, ...]
    mfa: MfaMode
    threat_protection: ThreatProtection
    retain_data: bool
    log_retention_days: int
    throttle: Throttle
    app: AppManifest
    route_throttle: Mapping[str, Throttle] = field(default_factory=dict)
    scope_group_ceilings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every Cognito group named by a scope ceiling, in first-mention order."""
        return tuple(dict.fromkeys(g for groups in self.scope_group_ceilings.values() for g in groups))

    @property
    def stack_name(self) -> str:
        return f"McpCognitoKit-{self.stage_name}"

    def throttle_for(self, function: str) -> Throttle:
        return self.route_throttle.get(function, self.throttle)

    @classmethod
    def from_scope(cls, scope: Construct) -> KitConfig:
        """Read every ``kit:*`` key from the construct tree's context (cdk.json + ``-c``)."""
        defaults = cdk_json_context()
        values: dict[str, Any] = {}
        for key in defaults:
            if key.startswith(PREFIX) and key != PREFIX + "doc":
                values[key] = scope.node.try_get_context(key)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, ctx: Mapping[str, Any]) -> KitConfig:
        def get(key: str) -> Any:
            full = PREFIX + key
            if full not in ctx:
                raise ConfigError(f"{full}: missing from the CDK context (is it in cdk.json?)")
            return ctx[full]

        stage = _str(get("stageName"), "stageName")
        if not _STAGE_RE.match(stage):
            raise ConfigError("kit:stageName: 1-20 lowercase letters, digits or hyphens, starting with a letter")
        prefix = get("cognitoDomainPrefix")
        if prefix is not None:
            prefix = _str(prefix, "cognitoDomainPrefix")
            if not _DOMAIN_PREFIX_RE.match(prefix) or any(w in prefix for w in _RESERVED_PREFIX_WORDS):
                raise ConfigError(
                    "kit:cognitoDomainPrefix: lowercase letters, digits and hyphens, at most 63 characters, "
                    "without 'aws', 'amazon' or 'cognito'"
                )
        mfa = get("mfa")
        if mfa not in ("optional", "required"):
            raise ConfigError("kit:mfa: 'optional' or 'required'")
        threat = get("threatProtection")
        if threat not in ("off", "audit", "enforced"):
            raise ConfigError("kit:threatProtection: 'off', 'audit' or 'enforced'")
        retention = _int(get("logRetentionDays"), "logRetentionDays", 1, 3653)
        if retention not in LOG_RETENTION_DAYS:
            raise ConfigError(f"kit:logRetentionDays: one of {sorted(LOG_RETENTION_DAYS)}")
        retain = get("retainData")
        if not isinstance(retain, bool):
            raise ConfigError("kit:retainData: true or false")
        origins = get("allowedOrigins")
        if not isinstance(origins, list) or not all(isinstance(o, str) and _ORIGIN_RE.match(o) for o in origins):
            raise ConfigError("kit:allowedOrigins: a list of origins such as https://app.example.com")
        route_throttle_raw = get("routeThrottle")
        if not isinstance(route_throttle_raw, dict):
            raise ConfigError("kit:routeThrottle: an object keyed by function name")
        app = _app(get("app"))
        return cls(
            app=app,
            scope_group_ceilings=_ceilings(get("scopeGroupCeilings"), app),
            stage_name=stage,
            resource_name=_str(get("resourceName"), "resourceName", max_len=200),
            cognito_domain_prefix=prefix,
            custom_domain=_custom_domain(get("customDomain")),
            access_token_minutes=_int(get("accessTokenMinutes"), "accessTokenMinutes", 5, 1440),
            id_token_minutes=_int(get("idTokenMinutes"), "idTokenMinutes", 5, 1440),
            refresh_token_days=_int(get("refreshTokenDays"), "refreshTokenDays", 1, 3650),
            auth_session_minutes=_int(get("authSessionMinutes"), "authSessionMinutes", 3, 15),
            grant_cache_seconds=_int(get("grantCacheSeconds"), "grantCacheSeconds", 0, 300),
            registration_policy=_str(get("registrationPolicy"), "registrationPolicy", max_len=40),
            allowed_origins=tuple(origins),
            mfa=mfa,
            threat_protection=threat,
            retain_data=retain,
            log_retention_days=retention,
            throttle=_throttle(get("throttle"), "throttle"),
            route_throttle={
                str(name): _throttle(value, f"routeThrottle.{name}") for name, value in route_throttle_raw.items()
            },
        )


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` block of cdk.json: the defaults the CDK CLI would pass."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: 'context' must be an object")
    return context


def _str(value: Any, key: str, max_len: int = 128) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ConfigError(f"kit:{key}: a non-empty string of at most {max_len} characters")
    return value


def _int(value: Any, key: str, low: int, high: int) -> int:
    # JSON and `-c key=value` both arrive here: accept digit strings from the command line.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"kit:{key}: an integer from {low} to {high}")
    return value


def _throttle(value: Any, key: str) -> Throttle:
    if not isinstance(value, dict) or set(value) != {"rateLimit", "burstLimit"}:
        raise ConfigError(f"kit:{key}: {{'rateLimit': number, 'burstLimit': integer}}")
    rate = value["rateLimit"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10_000:
        raise ConfigError(f"kit:{key}.rateLimit: a number of requests per second from 0 to 10000")
    return Throttle(rate_limit=float(rate), burst_limit=_int(value["burstLimit"], f"{key}.burstLimit", 1, 5000))


def _app(value: Any) -> AppManifest:
    """``kit:app``: the app folder (relative to cdk.json's folder) with a valid ``app.json``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("kit:app: the path of your MCP app's folder, e.g. examples/todos")
    root = (CDK_JSON.parent / Path(value).expanduser()).resolve()
    if not root.is_dir():
        raise ConfigError(f"kit:app: {root} is not a folder")
    try:
        return load_manifest(root)
    except AppError as exc:
        raise ConfigError(f"kit:app: {exc}") from None


def _ceilings(value: Any, app: AppManifest) -> dict[str, tuple[str, ...]]:
    if value is None:
        return app.default_ceilings
    if not isinstance(value, dict):
        raise ConfigError("kit:scopeGroupCeilings: null or an object {scope: [group, ...]}")
    unknown = sorted(set(value) - set(app.scope_names))
    if unknown:
        raise ConfigError(
            f"kit:scopeGroupCeilings: unknown scopes {unknown}; the app's catalogue has {list(app.scope_names)}"
        )
    out = {}
    for scope, groups in value.items():
        if (
            not isinstance(groups, list)
            or not groups
            or not all(isinstance(g, str) and _GROUP_RE.match(g) for g in groups)
        ):
            raise ConfigError(f"kit:scopeGroupCeilings.{scope}: a non-empty list of Cognito group names")
        out[scope] = tuple(groups)
    return out


def _custom_domain(value: Any) -> CustomDomain | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"hostName", "certificateArn"}:
        raise ConfigError("kit:customDomain: null or {'hostName': ..., 'certificateArn': ...}")
    host, arn = value["hostName"], value["certificateArn"]
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise ConfigError("kit:customDomain.hostName: a lowercase DNS name such as mcp.example.com")
    if not isinstance(arn, str) or not _ACM_ARN_RE.match(arn):
        raise ConfigError("kit:customDomain.certificateArn: an ACM certificate ARN in the stack's region")
    return CustomDomain(host_name=host, certificate_arn=arn)
