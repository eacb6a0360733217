"""The kit's deployment topology: the one home of what AWS (CDK) and ``make dev`` both build.

Pure data, importable by Lambda code (no ``aws_cdk``): which settings model each function
validates at cold start, the environment each function receives, the DynamoDB tables, and
the Cognito groups the scope ceilings name. ``infra`` turns it into CloudFormation and
``local`` into moto resources and per-function environments, so the two cannot drift apart.
The HTTP surface (routes, functions and their handlers) is its sibling ``routes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from functions.core.platform import settings
from functions.core.platform.kit_app import AppManifest
from functions.core.platform.routes import FunctionName
from functions.core.platform.settings import (
    CoreSettings,
    Env,
    FacadeSettings,
    ManagementSettings,
    McpSettings,
    MetadataSettings,
    RegistrationSettings,
)

_S = TypeVar("_S", bound=CoreSettings)


@dataclass(frozen=True)
class FunctionSettings(Generic[_S]):
    """A function and the settings model its handler validates at cold start.

    The model's fields are the function's whole environment (:func:`function_environment`).
    """

    function: FunctionName
    model: type[_S]

    def load(self) -> _S:
        """The function's settings, validated once per container (``settings.load``).

        Raises ``settings.SettingsError`` naming each missing or malformed variable, and
        ``kit_app.AppError`` for a missing or malformed app manifest.
        """
        loaded: _S = settings.load(self.model)  # functools.cache erases the type
        return loaded


MCP_SERVER: Final = FunctionSettings("mcp_server", McpSettings)
METADATA: Final = FunctionSettings("metadata", MetadataSettings)
REGISTRATION: Final = FunctionSettings("registration", RegistrationSettings)
AUTHORIZATION: Final = FunctionSettings("authorization", FacadeSettings)
TOKEN: Final = FunctionSettings("token", FacadeSettings)
# No route: EventBridge invokes it (Cognito admin events via CloudTrail, and a schedule).
DEPROVISIONING: Final = FunctionSettings("deprovisioning", ManagementSettings)

# Which settings model each function validates at cold start (its handler calls ``X.load()``).
SETTINGS_BY_FUNCTION: Final[Mapping[str, type[CoreSettings]]] = {
    f.function: f.model for f in (MCP_SERVER, METADATA, REGISTRATION, AUTHORIZATION, TOKEN, DEPROVISIONING)
}

# Variables only local mode sets (moto and the Cognito emulator, CIMD documents on loopback);
# in AWS the defaults derived from pool id and region are right, so the stack never sets them.
# The CIMD test switches never reach AWS even when supplied: fetching a client's metadata
# document from loopback is the SSRF the CIMD draft's security considerations forbid.
LOCAL_ONLY_ENV: Final = frozenset(
    {Env.ISSUER, Env.JWKS_URL, Env.RESOURCE_SERVER_ID, Env.INSECURE_CIMD_LOOPBACK, Env.CIMD_CA_FILE}
)


class TopologyError(ValueError):
    """A function's environment cannot be built: a required variable has no value."""


def settings_model(function: str) -> type[CoreSettings]:
    """The settings model ``function`` loads; a function not listed loads :class:`CoreSettings`."""
    return SETTINGS_BY_FUNCTION.get(function, CoreSettings)


def env_var_name(name: str, info: FieldInfo) -> str:
    """The environment variable a settings field reads (its alias; ``settings.Env``)."""
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return info.alias or name


def kit_variables() -> frozenset[str]:
    """Every environment variable any kit function reads (the names in ``settings.Env``)."""
    return frozenset(v for k, v in vars(Env).items() if k.isupper() and isinstance(v, str))


def model_environment(model: type[BaseModel], available: Mapping[str, str], *, local: bool) -> dict[str, str]:
    """The variables of settings ``model`` found in ``available``: a function's whole environment.

    ``local=False`` is AWS (the CDK stack): :data:`LOCAL_ONLY_ENV` is left out. A required
    variable missing from ``available`` raises :class:`TopologyError` naming the model and
    the variable, in AWS at synth and locally at ``make dev`` start, the same way.
    """
    env: dict[str, str] = {}
    for name, info in model.model_fields.items():
        var = env_var_name(name, info)
        if not local and var in LOCAL_ONLY_ENV:
            continue
        if var in available:
            env[var] = available[var]
        elif info.is_required():
            raise TopologyError(f"{model.__name__} requires {var}, which the stack does not provide")
    return env


def function_environment(function: str, available: Mapping[str, str], *, local: bool) -> dict[str, str]:
    """The environment ``function`` receives (:func:`model_environment` of its settings model)."""
    return model_environment(settings_model(function), available, local=local)


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index with String keys.

    ``non_key_attributes``: the attributes projected besides the keys (``INCLUDE``); None
    projects them all (``ALL``).
    """

    name: str
    partition_key: str
    sort_key: str | None = None
    non_key_attributes: tuple[str, ...] | None = None


# What a listing of grants and remembered consents shows, and nothing secret: never the KMS
# ciphertext of Cognito's refresh token nor the refresh-token chain head (docs/storage-schema.md,
# grants table indexes). The table's and the index's keys are always projected.
_LISTED: Final = (
    "grant_id",
    "username",
    "email",
    "client_name",
    "scopes",
    "status",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "revoked_reason",
    "redirect_uris",
    "ttl",
)
# Grants and consents by user and by client; the item ``kind`` as sort key selects one kind.
GRANTS_BY_USER: Final = IndexSpec("by_user", "sub", "kind", (*_LISTED, "client_id"))
GRANTS_BY_CLIENT: Final = IndexSpec("by_client", "client_id", "kind", (*_LISTED, "sub"))
# Every index of the grants table, in creation order. A deployment may have fewer
# (``kit:grantIndexes``): DynamoDB's UpdateTable, and so a CloudFormation update, creates or
# deletes at most one global secondary index at a time (README, "Upgrade the kit").
GRANT_INDEXES: Final = (GRANTS_BY_USER, GRANTS_BY_CLIENT)
GRANT_INDEX_NAMES: Final = tuple(index.name for index in GRANT_INDEXES)


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table: on demand, string keys, optional TTL attribute (epoch seconds).

    ``key`` names the table (construct id, access lists, local table name); ``env`` is the
    ``settings.Env`` variable carrying its name, ``None`` for an app table (``APP_TABLES``).
    """

    key: str
    env: str | None
    partition_key: str = "pk"
    sort_key: str | None = None
    ttl_attribute: str | None = "ttl"
    indexes: tuple[IndexSpec, ...] = ()


# The kit's data model (docs/storage-schema.md). One line per table.
TABLES: Final[tuple[TableSpec, ...]] = (
    TableSpec("grants", Env.GRANTS_TABLE, indexes=GRANT_INDEXES),
    TableSpec("clients", Env.CLIENTS_TABLE),
    TableSpec("artefacts", Env.ARTEFACTS_TABLE),
)


def app_table_specs(app: AppManifest) -> tuple[TableSpec, ...]:
    """The app's tables (its manifest's ``tables``), keyed by their manifest names."""
    return tuple(TableSpec(t.name, None, sort_key=t.sort_key, ttl_attribute=t.ttl_attribute) for t in app.tables)


def all_tables(app: AppManifest, grant_indexes: Collection[str] = GRANT_INDEX_NAMES) -> tuple[TableSpec, ...]:
    """The kit's tables, then the app's; the grants table with only the indexes named in ``grant_indexes``.

    ``grant_indexes``: names from :data:`GRANT_INDEX_NAMES` (``kit:grantIndexes``, validated
    by ``infra.context.grant_indexes``); an unknown name raises ``TopologyError``.
    """
    unknown = sorted(set(grant_indexes) - set(GRANT_INDEX_NAMES))
    if unknown:
        raise TopologyError(f"unknown grants-table indexes {unknown}; known: {list(GRANT_INDEX_NAMES)}")
    kit = tuple(
        replace(spec, indexes=tuple(i for i in spec.indexes if i.name in grant_indexes))
        if spec.key == "grants"
        else spec
        for spec in TABLES
    )
    return (*kit, *app_table_specs(app))


def table_environment(app: AppManifest, table_name: Callable[[TableSpec], str]) -> dict[str, str]:
    """The variables naming the tables: each kit table's ``env``, and ``APP_TABLES`` as JSON.

    ``table_name`` gives a spec's deployed name (a CloudFormation token in AWS, a fixed name
    locally).
    """
    env = {spec.env: table_name(spec) for spec in TABLES if spec.env}
    env[Env.APP_TABLES] = json.dumps({spec.key: table_name(spec) for spec in app_table_specs(app)})
    return env


def scope_group_ceilings(app: AppManifest) -> dict[str, tuple[str, ...]]:
    """The default scope ceilings, ``{scope: (group, ...)}``: the app's manifest (each scope's ``groups``).

    The CDK stack deploys them unless ``kit:scopeGroupCeilings`` replaces them; ``make dev`` always.
    """
    return app.default_ceilings


def ceiling_groups(ceilings: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """Every Cognito group a ceiling names, in first-mention order (the groups a new pool gets)."""
    return tuple(dict.fromkeys(g for groups in ceilings.values() for g in groups))


def group_description(group: str) -> str:
    """The description of a scope-ceiling group the kit creates."""
    return f"mcp-cognito-kit scope-ceiling group '{group}'"
