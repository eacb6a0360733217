"""Environment settings: one typed model per function, validated once at cold start.

``Env`` is the one home of every environment variable name; the CDK stack and the local
stack import it to set them. A missing or malformed variable raises ``SettingsError``
naming the variable, so a misconfigured function fails at init, never mid-request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import Annotated, Final, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from functions.core.oauth.uris import LOOPBACK_HOSTS
from functions.core.platform import kit_app
from functions.core.platform.routes import MCP_PATH


class Env:
    """Environment variable names (the single source for functions, infra and local)."""

    BASE_URL: Final = "KIT_BASE_URL"
    ALLOWED_ORIGINS: Final = "KIT_ALLOWED_ORIGINS"
    RESOURCE_NAME: Final = "KIT_RESOURCE_NAME"
    USER_POOL_ID: Final = "COGNITO_USER_POOL_ID"
    REGION: Final = "COGNITO_REGION"
    ISSUER: Final = "COGNITO_ISSUER"
    JWKS_URL: Final = "COGNITO_JWKS_URL"
    GATEWAY_CLIENT_ID: Final = "COGNITO_GATEWAY_CLIENT_ID"
    RESOURCE_SERVER_ID: Final = "COGNITO_RESOURCE_SERVER_ID"
    RESOURCE_BINDING: Final = "COGNITO_RESOURCE_BINDING"
    GRANTS_TABLE: Final = "GRANTS_TABLE"
    # Comma-separated: the grants table's global secondary indexes this deployment has.
    GRANT_INDEXES: Final = "GRANT_INDEXES"
    # JSON {"<app table name>": "<DynamoDB table name>"}: the tables of the app's manifest.
    APP_TABLES: Final = "APP_TABLES"
    GRANT_CACHE_SECONDS: Final = "GRANT_CACHE_SECONDS"
    JWKS_MIN_REFRESH_SECONDS: Final = "JWKS_MIN_REFRESH_SECONDS"
    TOKEN_LEEWAY_SECONDS: Final = "TOKEN_LEEWAY_SECONDS"
    # Authorization facade (registration, authorization, token functions).
    COGNITO_DOMAIN_URL: Final = "COGNITO_DOMAIN_URL"
    CLIENTS_TABLE: Final = "CLIENTS_TABLE"
    ARTEFACTS_TABLE: Final = "ARTEFACTS_TABLE"
    KMS_KEY_ID: Final = "KMS_KEY_ID"
    REGISTRATION_POLICY: Final = "REGISTRATION_POLICY"
    DEFAULT_IDENTITY_PROVIDER: Final = "COGNITO_DEFAULT_IDENTITY_PROVIDER"
    REGISTRATION_REDIRECT_PATTERNS: Final = "REGISTRATION_REDIRECT_PATTERNS"
    MAX_CLIENTS: Final = "MAX_CLIENTS"
    CLIENT_IDLE_DAYS: Final = "CLIENT_IDLE_DAYS"
    REGISTRATION_RATE_PER_MINUTE: Final = "REGISTRATION_RATE_PER_MINUTE"
    SCOPE_GROUP_CEILINGS: Final = "SCOPE_GROUP_CEILINGS"
    GRANT_LIFETIME_DAYS: Final = "GRANT_LIFETIME_DAYS"
    REFRESH_REUSE_GRACE_SECONDS: Final = "REFRESH_REUSE_GRACE_SECONDS"
    INSECURE_CIMD_LOOPBACK: Final = "INSECURE_CIMD_LOOPBACK"
    CIMD_CA_FILE: Final = "CIMD_CA_FILE"


# The settings an operator tunes per deployment (each has a ``kit:*`` context key in the CDK
# stack, infra/config.py); ``make dev`` passes them through from its own environment.
OPERATOR_ENV: Final = (
    Env.GRANT_CACHE_SECONDS,
    Env.REGISTRATION_POLICY,
    Env.REGISTRATION_REDIRECT_PATTERNS,
    Env.MAX_CLIENTS,
    Env.CLIENT_IDLE_DAYS,
    Env.REGISTRATION_RATE_PER_MINUTE,
    Env.GRANT_LIFETIME_DAYS,
    Env.REFRESH_REUSE_GRACE_SECONDS,
    Env.JWKS_MIN_REFRESH_SECONDS,
    Env.TOKEN_LEEWAY_SECONDS,
    Env.DEFAULT_IDENTITY_PROVIDER,
)


class RegistrationPolicy(StrEnum):
    """Who may bring a client (``REGISTRATION_POLICY``); enforced by every function that meets one.

    * ``open``: RFC 7591 dynamic registration for anyone, and Client ID Metadata Documents;
    * ``cimd-only``: metadata documents only; ``/register`` is not offered;
    * ``dcr-only``: RFC 7591 registration only; no metadata document is fetched, and the
      RFC 8414 metadata says so, so clients that prefer documents register instead (for
      clients whose document host refuses the function's egress, e.g. bot protection);
    * ``closed``: neither; only clients an operator put in the registry.
    """

    OPEN = "open"
    CIMD_ONLY = "cimd-only"
    DCR_ONLY = "dcr-only"
    CLOSED = "closed"

    @property
    def offers_registration(self) -> bool:
        """Whether ``POST /register`` exists (RFC 8414 ``registration_endpoint``)."""
        return self in (RegistrationPolicy.OPEN, RegistrationPolicy.DCR_ONLY)

    @property
    def accepts_cimd(self) -> bool:
        """Whether an https ``client_id`` is fetched as a Client ID Metadata Document."""
        return self in (RegistrationPolicy.OPEN, RegistrationPolicy.CIMD_ONLY)


class SettingsError(RuntimeError):
    """Configuration is missing or malformed; the message names each variable."""


# The unit of the *_DAYS settings and of day-based TTLs, in seconds.
DAY_SECONDS: Final = 86_400
# Cognito identity provider names (CreateIdentityProvider ProviderName): 1-32 characters,
# no whitespace, not starting with an underscore; COGNITO is the pool's own directory.
IDENTITY_PROVIDER_PATTERN: Final = r"^[^\s_][^\s]{0,31}$"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]


def _json_text(value: object, refusal: str) -> object:
    """An environment variable's JSON text parsed (blank = ``{}``); other values unchanged.

    ``ValueError(refusal)`` when the text is not JSON; the field's type then checks the shape.
    """
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else {}
    except ValueError as exc:
        raise ValueError(refusal) from exc


def _origin_only(url: str, what: str) -> str:
    """An absolute http(s) URL with no path, query or fragment; https unless loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{what} must be scheme://host[:port] with no path, query, fragment or userinfo")
    # OAuth 2.1 section 1.5: TLS everywhere; plain http only for a developer's loopback.
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{what} must use https (http is allowed only for localhost)")
    return f"{parts.scheme}://{parts.netloc}"


def check_redirect_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """``patterns`` unchanged, or ``ValueError`` naming the problem of the first malformed one.

    A malformed redirect pattern would silently match nothing: refused at cold start, and by
    the CDK stack at synth (``kit:redirectPatterns``) with this same parser.
    """
    from functions.core.clients.redirect_patterns import parse_redirect_pattern

    for pattern in patterns:
        parse_redirect_pattern(pattern)  # raises ValueError naming the problem
    return patterns


def _grant_index_names() -> tuple[str, ...]:
    """Every index of the grants table (the topology's; imported late: it imports this module)."""
    from functions.core.platform.topology import GRANT_INDEX_NAMES

    return GRANT_INDEX_NAMES


class CoreSettings(BaseModel):
    """What every function needs: the public base URL ``<B>``.

    ``<B>`` is the issuer and the prefix of every advertised URL. It always comes from
    configuration, never from the Host header, which a caller controls.
    """

    # defer_build: a model's validator is built at its first validation, not at import; each
    # function validates one model of this module, so it never builds the others (cold start).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    base_url: str = Field(validation_alias=Env.BASE_URL)
    resource_name: str = Field(
        default="MCP Cognito Kit", validation_alias=Env.RESOURCE_NAME, min_length=1, max_length=200
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _origin_only(value, "the base URL")

    @property
    def issuer(self) -> str:
        """The authorization server's ``issuer`` (RFC 8414 section 2, RFC 9207): exactly the base URL."""
        return self.base_url

    @property
    def mcp_url(self) -> str:
        """The canonical MCP server URI (MCP spec: resource parameter, RFC 8707)."""
        return self.base_url + MCP_PATH

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (default: ``os.environ``); ``SettingsError`` naming every bad variable."""
        source = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = ".".join(str(p) for p in err["loc"]) or "settings"
                problems.append(f"{name}: {err['msg']}")
            raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


class MetadataSettings(CoreSettings):
    """Settings of the metadata function: what the RFC 8414 document advertises."""

    registration_policy: RegistrationPolicy = Field(
        default=RegistrationPolicy.OPEN, validation_alias=Env.REGISTRATION_POLICY
    )


class CognitoSettings(CoreSettings):
    """What a function that verifies Cognito access tokens needs."""

    user_pool_id: str = Field(validation_alias=Env.USER_POOL_ID, pattern=r"^[\w-]+_[0-9a-zA-Z]+$")
    region: str = Field(validation_alias=Env.REGION, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    gateway_client_id: str = Field(validation_alias=Env.GATEWAY_CLIENT_ID, min_length=1, max_length=128)
    issuer_override: str | None = Field(default=None, validation_alias=Env.ISSUER)
    jwks_url_override: str | None = Field(default=None, validation_alias=Env.JWKS_URL)
    resource_server_override: str | None = Field(default=None, validation_alias=Env.RESOURCE_SERVER_ID)
    # RFC 8707 resource binding: Cognito puts the bound resource into ``aud``.
    resource_binding: bool = Field(default=True, validation_alias=Env.RESOURCE_BINDING)
    jwks_min_refresh_seconds: float = Field(default=60.0, validation_alias=Env.JWKS_MIN_REFRESH_SECONDS, ge=1, le=3600)
    token_leeway_seconds: int = Field(default=10, validation_alias=Env.TOKEN_LEEWAY_SECONDS, ge=0, le=120)
    # Group ceilings apply where scopes are granted (consent) and again where they are used
    # (/mcp, from the token's current cognito:groups), so leaving a group takes effect at the
    # next access token, not when the grant expires.
    # JSON {"scope": ["group", ...]}: a scope listed here may be granted only by members of
    # one of its groups; scopes not listed are open to every user.
    # Unset: the ceilings of the app's manifest (each scope's "groups").
    scope_group_ceilings: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: kit_app.current().default_ceilings, validation_alias=Env.SCOPE_GROUP_CEILINGS
    )

    @field_validator("scope_group_ceilings", mode="before")
    @classmethod
    def _parse_ceilings(cls, value: object) -> object:
        return _json_text(value, "must be a JSON object of scope -> [groups]")

    @field_validator("scope_group_ceilings")
    @classmethod
    def _known_scopes(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        from functions.core.oauth.scopes import get_scope

        unknown = [name for name in value if get_scope(name) is None]
        if unknown:
            raise ValueError(f"unknown scopes {unknown}")
        return value

    @property
    def cognito_issuer(self) -> str:
        """The ``iss`` of the pool's tokens: ``https://cognito-idp.<region>.amazonaws.com/<pool>`` unless overridden."""
        return self.issuer_override or f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        """Where the pool's signing keys are fetched (``<cognito_issuer>/.well-known/jwks.json`` unless overridden)."""
        return self.jwks_url_override or f"{self.cognito_issuer}/.well-known/jwks.json"

    @property
    def resource_server_id(self) -> str:
        """Cognito resource-server identifier, the prefix of custom scopes (the MCP URL)."""
        return self.resource_server_override or self.mcp_url


class McpSettings(CognitoSettings):
    """Settings of the MCP function."""

    grants_table: str = Field(validation_alias=Env.GRANTS_TABLE, min_length=3, max_length=255)
    # Read only: a grant authorizes only while its registered client exists (RFC 7592 s2.3).
    clients_table: str = Field(validation_alias=Env.CLIENTS_TABLE, min_length=3, max_length=255)
    app_tables: dict[str, str] = Field(default_factory=dict, validation_alias=Env.APP_TABLES)

    @field_validator("app_tables", mode="before")
    @classmethod
    def _parse_app_tables(cls, value: object) -> object:
        return _json_text(value, "must be a JSON object of app table -> DynamoDB table name")

    @field_validator("app_tables")
    @classmethod
    def _every_app_table(cls, value: dict[str, str]) -> dict[str, str]:
        # Every table of the app's manifest must be named, or its tools fail mid-request.
        missing = [t.name for t in kit_app.current().tables if not 3 <= len(value.get(t.name, "")) <= 255]
        if missing:
            raise ValueError(f"no DynamoDB table name for the app's tables {missing}")
        return value

    grant_cache_seconds: float = Field(default=10.0, validation_alias=Env.GRANT_CACHE_SECONDS, ge=0, le=300)
    # Extra browser origins allowed to call /mcp (the MCP transport spec requires Origin
    # validation against DNS rebinding); <B> itself is always allowed.
    allowed_origins: CsvList = Field(default=(), validation_alias=Env.ALLOWED_ORIGINS)


class RegistrationSettings(CoreSettings):
    """Settings of the registration function (DCR, RFC 7591/7592): operator policy."""

    clients_table: str = Field(validation_alias=Env.CLIENTS_TABLE, min_length=3, max_length=255)
    artefacts_table: str = Field(validation_alias=Env.ARTEFACTS_TABLE, min_length=3, max_length=255)
    registration_policy: RegistrationPolicy = Field(
        default=RegistrationPolicy.OPEN, validation_alias=Env.REGISTRATION_POLICY
    )
    # Redirect URI patterns (functions.core.clients.redirect_patterns.parse_redirect_pattern syntax) a
    # redirect URI must match on top of the fixed safety rules; empty means "any URI the rules allow".
    redirect_patterns: CsvList = Field(default=(), validation_alias=Env.REGISTRATION_REDIRECT_PATTERNS)

    @field_validator("redirect_patterns")
    @classmethod
    def _patterns_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_redirect_patterns(value)

    max_clients: int = Field(default=10_000, validation_alias=Env.MAX_CLIENTS, ge=1, le=10_000_000)
    client_idle_days: int = Field(default=30, validation_alias=Env.CLIENT_IDLE_DAYS, ge=1, le=3650)
    registration_rate_per_minute: int = Field(
        default=10, validation_alias=Env.REGISTRATION_RATE_PER_MINUTE, ge=1, le=10_000
    )


class ManagementSettings(CognitoSettings):
    """What the management plane needs (deprovisioning function, local poller, admin CLI).

    Revoking a grant revokes Cognito's refresh token too, so the KMS key and the Cognito
    domain are needed beside the grants table.
    """

    grants_table: str = Field(validation_alias=Env.GRANTS_TABLE, min_length=3, max_length=255)
    # The grants-table indexes the stack created (kit:grantIndexes, default all): a feature that
    # needs a missing one refuses (``grant_index.IndexNotDeployed``), never lists nothing.
    grant_indexes: CsvList = Field(default_factory=lambda: _grant_index_names(), validation_alias=Env.GRANT_INDEXES)
    kms_key_id: str = Field(validation_alias=Env.KMS_KEY_ID, min_length=1, max_length=2048)
    cognito_domain_url: str = Field(validation_alias=Env.COGNITO_DOMAIN_URL)

    @field_validator("cognito_domain_url")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        return _origin_only(value, "the Cognito domain URL")

    @field_validator("grant_indexes")
    @classmethod
    def _known_indexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(_grant_index_names()))
        if unknown or len(set(value)) != len(value):
            raise ValueError(f"distinct names of {list(_grant_index_names())}, got {list(value)}")
        return value


class FacadeSettings(ManagementSettings):
    """Settings of the authorization and token functions."""

    clients_table: str = Field(validation_alias=Env.CLIENTS_TABLE, min_length=3, max_length=255)
    artefacts_table: str = Field(validation_alias=Env.ARTEFACTS_TABLE, min_length=3, max_length=255)
    # Which clients /authorize and /token resolve: CIMD documents only unless ``closed``.
    registration_policy: RegistrationPolicy = Field(
        default=RegistrationPolicy.OPEN, validation_alias=Env.REGISTRATION_POLICY
    )
    # Sent to Cognito's /oauth2/authorize as ``identity_provider``: people go straight to that
    # provider (a SAML/OIDC IdP of the pool, or COGNITO) instead of the managed-login chooser.
    default_identity_provider: str | None = Field(
        default=None, validation_alias=Env.DEFAULT_IDENTITY_PROVIDER, pattern=IDENTITY_PROVIDER_PATTERN
    )
    client_idle_days: int = Field(default=30, validation_alias=Env.CLIENT_IDLE_DAYS, ge=1, le=3650)
    # Must not exceed the gateway app client's refresh-token validity in Cognito.
    grant_lifetime_days: int = Field(default=30, validation_alias=Env.GRANT_LIFETIME_DAYS, ge=1, le=3650)
    # RFC 9700 section 4.14.2: how long a just-rotated refresh token may still be presented by
    # its client (a retried or parallel refresh) without counting as reuse; also how long a
    # redeemed code's identical request is a retry, not a replay (RFC 6749 s4.1.2); 0 = strict.
    refresh_reuse_grace_seconds: int = Field(default=30, validation_alias=Env.REFRESH_REUSE_GRACE_SECONDS, ge=0, le=300)
    # The operator's redirect URI policy, applied to Client ID Metadata Documents as to DCR.
    redirect_patterns: CsvList = Field(default=(), validation_alias=Env.REGISTRATION_REDIRECT_PATTERNS)

    @property
    def grant_lifetime_seconds(self) -> int:
        """GRANT_LIFETIME_DAYS in seconds: a grant's and a remembered consent's life from its last use."""
        return self.grant_lifetime_days * DAY_SECONDS

    @field_validator("redirect_patterns")
    @classmethod
    def _patterns_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_redirect_patterns(value)

    # INSECURE, for local testing only: allow CIMD documents on loopback (and over http).
    insecure_cimd_loopback: bool = Field(default=False, validation_alias=Env.INSECURE_CIMD_LOOPBACK)
    cimd_ca_file: str | None = Field(default=None, validation_alias=Env.CIMD_CA_FILE)

    @property
    def secure_cookies(self) -> bool:
        """``__Host-`` prefix + Secure everywhere but plain-http localhost."""
        return self.base_url.startswith("https://")


_S = TypeVar("_S", bound=CoreSettings)


@cache
def load(model: type[_S]) -> _S:
    """Validate once per container (cold start) and reuse on every warm invocation.

    The app's manifest (scope catalogue) is loaded here too, so a missing or malformed one
    stops every function at cold start (``kit_app.AppError`` naming the file and field).
    """
    kit_app.current()
    return model.from_env()
