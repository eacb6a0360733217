"""Deployment configuration: CDK context, validated once, with its defaults in cdk.json.

cdk.json is the one home of every default and of its documentation (the ``kit:doc`` entry);
``kit:stages`` holds what differs per stage. Where values come from and which wins:
:mod:`infra.context`. ``-c kit:key=value`` on the CLI overrides both. Every function setting
an operator may change has a key here, validated at synth with the same bounds and parsers the
functions apply at cold start (``functions.core.platform.settings``). Nothing here calls AWS or git.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import annotated_types
from constructs import Construct
from pydantic import BaseModel

from functions.core.platform.kit_app import AppError, AppManifest, load_manifest
from functions.core.platform.settings import (
    IDENTITY_PROVIDER_PATTERN,
    CognitoSettings,
    Env,
    FacadeSettings,
    McpSettings,
    RegistrationPolicy,
    RegistrationSettings,
    check_redirect_patterns,
)
from functions.core.platform.topology import ceiling_groups, scope_group_ceilings
from infra.context import (
    CDK_JSON,
    PREFIX,
    REPO_ROOT,
    STAGE_NAME_KEY,
    ConfigError,
    alarm_email,
    cdk_json_context,
    resolve,
    stage_names,
)

__all__ = ["CDK_JSON", "PREFIX", "REPO_ROOT", "ConfigError", "KitConfig", "cdk_json_context"]

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
# Cognito user pool ids: <region>_<id>.
_POOL_ID_RE: Final = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d)_[0-9a-zA-Z]+$")
# A Cognito prefix domain, or a custom domain the pool serves managed login on (https, no path).
_DOMAIN_URL_RE: Final = re.compile(r"^https://(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_IDP_RE: Final = re.compile(IDENTITY_PROVIDER_PATTERN)


@dataclass(frozen=True)
class NumericSetting:
    """A numeric function setting with its ``kit:*`` key; bounds come from the settings model."""

    key: str
    env: str
    model: type[BaseModel]
    field: str

    def bounds(self) -> tuple[float, float]:
        info = self.model.model_fields[self.field]
        low = next(m.ge for m in info.metadata if isinstance(m, annotated_types.Ge))
        high = next(m.le for m in info.metadata if isinstance(m, annotated_types.Le))
        return float(low), float(high)  # type: ignore[arg-type]

    @property
    def is_int(self) -> bool:
        return self.model.model_fields[self.field].annotation is int


# Function settings an operator may tune, each one kit:* key (defaults and docs in cdk.json).
NUMERIC_SETTINGS: Final = (
    NumericSetting("maxClients", Env.MAX_CLIENTS, RegistrationSettings, "max_clients"),
    NumericSetting("clientIdleDays", Env.CLIENT_IDLE_DAYS, RegistrationSettings, "client_idle_days"),
    NumericSetting(
        "registrationRatePerMinute",
        Env.REGISTRATION_RATE_PER_MINUTE,
        RegistrationSettings,
        "registration_rate_per_minute",
    ),
    NumericSetting(
        "refreshReuseGraceSeconds", Env.REFRESH_REUSE_GRACE_SECONDS, FacadeSettings, "refresh_reuse_grace_seconds"
    ),
    NumericSetting("grantCacheSeconds", Env.GRANT_CACHE_SECONDS, McpSettings, "grant_cache_seconds"),
    NumericSetting("jwksMinRefreshSeconds", Env.JWKS_MIN_REFRESH_SECONDS, CognitoSettings, "jwks_min_refresh_seconds"),
    NumericSetting("tokenLeewaySeconds", Env.TOKEN_LEEWAY_SECONDS, CognitoSettings, "token_leeway_seconds"),
)
# Null by default: the grant then lives as long as the Cognito refresh token behind it.
GRANT_LIFETIME: Final = NumericSetting(
    "grantLifetimeDays", Env.GRANT_LIFETIME_DAYS, FacadeSettings, "grant_lifetime_days"
)


@dataclass(frozen=True)
class Throttle:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class CustomDomain:
    host_name: str
    certificate_arn: str


@dataclass(frozen=True)
class ExistingUserPool:
    """``kit:existingUserPool``: a team's pool, to which the stack adds only what the kit owns."""

    user_pool_id: str
    domain_url: str
    resource_binding: bool

    @property
    def region(self) -> str:
        """The pool's region, the first part of its id (the stack must deploy there)."""
        return self.user_pool_id.split("_", 1)[0]


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
    registration_policy: RegistrationPolicy
    allowed_origins: tuple[str, ...]
    mfa: MfaMode
    threat_protection: ThreatProtection
    retain_data: bool
    log_retention_days: int
    throttle: Throttle
    app: AppManifest
    route_throttle: Mapping[str, Throttle] = field(default_factory=dict)
    scope_group_ceilings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    existing_user_pool: ExistingUserPool | None = None
    identity_providers: tuple[str, ...] = ("COGNITO",)
    default_identity_provider: str | None = None
    redirect_patterns: tuple[str, ...] = ()
    grant_lifetime_days: int = 30
    alarm_email: str | None = None  # kit:alarmEmail, subscribed to the alarm topic
    # NUMERIC_SETTINGS by environment variable name.
    numeric_settings: Mapping[str, int | float] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every Cognito group named by a scope ceiling, in first-mention order."""
        return ceiling_groups(self.scope_group_ceilings)

    @property
    def stack_name(self) -> str:
        return f"McpCognitoKit-{self.stage_name}"

    @property
    def grant_cache_seconds(self) -> int | float:
        return self.numeric_settings[Env.GRANT_CACHE_SECONDS]

    @property
    def resource_binding(self) -> bool:
        """RFC 8707 ``aud`` binding: always with a pool the kit creates (Essentials, managed login)."""
        return self.existing_user_pool is None or self.existing_user_pool.resource_binding

    def throttle_for(self, function: str) -> Throttle:
        return self.route_throttle.get(function, self.throttle)

    def function_settings(self) -> dict[str, str]:
        """The operator settings as the functions read them (``Env`` name -> value)."""
        env = {name: str(value) for name, value in self.numeric_settings.items()}
        env[Env.REGISTRATION_POLICY] = self.registration_policy.value
        env[Env.REGISTRATION_REDIRECT_PATTERNS] = ",".join(self.redirect_patterns)
        env[Env.GRANT_LIFETIME_DAYS] = str(self.grant_lifetime_days)
        env[Env.RESOURCE_BINDING] = "true" if self.resource_binding else "false"
        if self.default_identity_provider is not None:
            env[Env.DEFAULT_IDENTITY_PROVIDER] = self.default_identity_provider
        return env

    @classmethod
    def from_scope(cls, scope: Construct, explicit: Set[str] = frozenset()) -> KitConfig:
        """Every ``kit:*`` key from the construct tree's context (cdk.json, stage entry, ``-c``).

        ``explicit``: the keys given as flags (see :mod:`infra.context`). Every stage of
        ``kit:stages`` is validated too, so a broken prod entry fails the dev synth already.
        """
        defaults = cdk_json_context()
        context = scope.node.get_all_context()
        config = cls.from_mapping(resolve(context, defaults, explicit=explicit))
        for other in stage_names(context, defaults):
            if other == config.stage_name:
                continue
            try:
                cls.from_mapping(resolve(context, defaults, explicit=explicit, stage=other))
            except ConfigError as exc:
                raise ConfigError(f"kit:stages.{other}: {exc}") from None
        return config

    @classmethod
    def from_mapping(cls, ctx: Mapping[str, Any]) -> KitConfig:
        """Validate resolved ``kit:*`` values; ``ConfigError`` names the first bad key."""

        def get(key: str) -> Any:
            full = PREFIX + key
            if full not in ctx:
                raise ConfigError(f"{full}: missing from the CDK context (is it in cdk.json?)")
            return ctx[full]

        stage = _str(get("stageName"), "stageName")
        if not _STAGE_RE.match(stage):
            raise ConfigError(f"{STAGE_NAME_KEY}: 1-20 lowercase letters, digits or hyphens, starting with a letter")
        existing = _existing_user_pool(get("existingUserPool"))
        prefix = get("cognitoDomainPrefix")
        if prefix is not None:
            prefix = _str(prefix, "cognitoDomainPrefix")
            if not _DOMAIN_PREFIX_RE.match(prefix) or any(w in prefix for w in _RESERVED_PREFIX_WORDS):
                raise ConfigError(
                    "kit:cognitoDomainPrefix: lowercase letters, digits and hyphens, at most 63 characters, "
                    "without 'aws', 'amazon' or 'cognito'"
                )
            if existing is not None:
                raise ConfigError(
                    "kit:cognitoDomainPrefix: must be null with kit:existingUserPool (its domainUrl is the domain)"
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
        refresh_days = _int(get("refreshTokenDays"), "refreshTokenDays", 1, 3650)
        providers = _identity_providers(get("identityProviders"))
        return cls(
            app=app,
            scope_group_ceilings=_ceilings(get("scopeGroupCeilings"), app),
            stage_name=stage,
            resource_name=_str(get("resourceName"), "resourceName", max_len=200),
            cognito_domain_prefix=prefix,
            custom_domain=_custom_domain(get("customDomain")),
            access_token_minutes=_int(get("accessTokenMinutes"), "accessTokenMinutes", 5, 1440),
            id_token_minutes=_int(get("idTokenMinutes"), "idTokenMinutes", 5, 1440),
            refresh_token_days=refresh_days,
            auth_session_minutes=_int(get("authSessionMinutes"), "authSessionMinutes", 3, 15),
            registration_policy=_policy(get("registrationPolicy")),
            allowed_origins=tuple(origins),
            mfa=mfa,
            threat_protection=threat,
            retain_data=retain,
            log_retention_days=retention,
            throttle=_throttle(get("throttle"), "throttle"),
            route_throttle={
                str(name): _throttle(value, f"routeThrottle.{name}") for name, value in route_throttle_raw.items()
            },
            existing_user_pool=existing,
            identity_providers=providers,
            default_identity_provider=_default_provider(get("defaultIdentityProvider"), providers),
            redirect_patterns=_redirect_patterns(get("redirectPatterns")),
            grant_lifetime_days=_grant_lifetime(get("grantLifetimeDays"), refresh_days),
            alarm_email=alarm_email(get("alarmEmail")),
            numeric_settings={s.env: _numeric(get(s.key), s) for s in NUMERIC_SETTINGS},
        )


def _policy(value: Any) -> RegistrationPolicy:
    try:
        return RegistrationPolicy(value)
    except ValueError:
        allowed = ", ".join(repr(p.value) for p in RegistrationPolicy)
        raise ConfigError(f"kit:registrationPolicy: one of {allowed}, got {value!r}") from None


def _numeric(value: Any, setting: NumericSetting) -> int | float:
    low, high = setting.bounds()
    if setting.is_int:
        return _int(value, setting.key, int(low), int(high))
    if isinstance(value, str):  # a -c flag; nan and inf fail the range check below
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"kit:{setting.key}: a number from {low:g} to {high:g}")
    return value


def _grant_lifetime(value: Any, refresh_days: int) -> int:
    if value is None:
        return refresh_days
    low, high = GRANT_LIFETIME.bounds()
    days = _int(value, GRANT_LIFETIME.key, int(low), int(high))
    if days > refresh_days:
        # A grant must not outlive the Cognito refresh token behind it.
        raise ConfigError(f"kit:grantLifetimeDays: at most kit:refreshTokenDays ({refresh_days}), got {days}")
    return days


def _redirect_patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p and "," not in p for p in value):
        raise ConfigError("kit:redirectPatterns: a list of redirect URI patterns (strings without commas)")
    for pattern in value:
        try:
            check_redirect_patterns((pattern,))  # the parser the functions use at cold start
        except ValueError as exc:
            raise ConfigError(f"kit:redirectPatterns: {pattern!r}: {exc}") from None
    return tuple(value)


def _identity_providers(value: Any) -> tuple[str, ...]:
    names = isinstance(value, list) and all(isinstance(p, str) and _IDP_RE.match(p) for p in value)
    if not names or not value or len(set(value)) != len(value):
        raise ConfigError(
            "kit:identityProviders: a non-empty list of distinct identity provider names of the pool "
            '(1-32 characters, e.g. ["COGNITO", "CorpSAML"])'
        )
    return tuple(value)


def _default_provider(value: Any, providers: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in providers:
        raise ConfigError(f"kit:defaultIdentityProvider: null or one of kit:identityProviders {list(providers)}")
    return value


def _existing_user_pool(value: Any) -> ExistingUserPool | None:
    if value is None:
        return None
    keys = {"userPoolId", "domainUrl", "resourceBinding"}
    if not isinstance(value, dict) or set(value) != keys:
        raise ConfigError(
            'kit:existingUserPool: null or {"userPoolId": "<region>_<id>", "domainUrl": "https://...", '
            '"resourceBinding": true|false}'
        )
    pool_id, domain, binding = value["userPoolId"], value["domainUrl"], value["resourceBinding"]
    if not isinstance(pool_id, str) or not _POOL_ID_RE.match(pool_id):
        raise ConfigError("kit:existingUserPool.userPoolId: a user pool id such as us-east-1_AbC123xyz")
    if not isinstance(domain, str) or not _DOMAIN_URL_RE.match(domain.rstrip("/")):
        raise ConfigError(
            "kit:existingUserPool.domainUrl: the pool's managed-login domain as https://host, e.g. "
            "https://<prefix>.auth.<region>.amazoncognito.com or https://login.example.com (no path)"
        )
    if not isinstance(binding, bool):
        raise ConfigError("kit:existingUserPool.resourceBinding: true (Essentials/Plus with managed login) or false")
    return ExistingUserPool(user_pool_id=pool_id, domain_url=domain.rstrip("/"), resource_binding=binding)


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
        return scope_group_ceilings(app)
    if not isinstance(value, dict):
        raise ConfigError("kit:scopeGroupCeilings: null or an object {scope: [group, ...]}")
    unknown = sorted(set(value) - set(app.scope_names))
    if unknown:
        raise ConfigError(
            f"kit:scopeGroupCeilings: unknown scopes {unknown}; the app's catalogue has {list(app.scope_names)}"
        )
    out = {}
    for scope, groups in value.items():
        valid = isinstance(groups, list) and all(isinstance(g, str) and _GROUP_RE.match(g) for g in groups)
        if not valid or not groups:
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
