"""The Lambda function factory, each function's environment, and least-privilege grants.

Every function in ``functions.core.platform.routes.FUNCTIONS`` is built by :class:`KitFunction` with the
same defaults (Python 3.13 on arm64, X-Ray, its own log group, Powertools settings, a published
version behind the ``live`` alias). Its settings model and environment come from the
deployment topology (``functions.core.platform.topology``, shared with ``make dev``); what
else differs per function lives in two tables here:

- :data:`TUNING`: memory, timeout, SnapStart.
- :data:`ACCESS`: the AWS actions its role holds, on which resources.

A function missing from these tables still deploys, with the core settings, the shared
defaults and no AWS access at all (fail closed), so new functions are picked up automatically.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.core.platform.kit_app import AppManifest
from functions.core.platform.routes import FunctionSpec
from functions.core.platform.topology import GRANT_INDEX_NAMES, GRANTS_BY_USER
from infra.context import ConfigError
from infra.nag import acknowledge, acknowledge_warning
from infra.packaging import APP_FUNCTION, lambda_code

# Python 3.13, one behind the newest (3.14): the runtime loads only bytecode of its own minor
# version, the assets ship it (infra/packaging.py), and the build machines have CPython 3.13.
RUNTIME: Final = lambda_.Runtime.PYTHON_3_13
RUNTIME_REASON: Final = (
    "Python 3.13 is chosen over 3.14 because the asset ships bytecode compiled by the runtime's own minor "
    "version (the code directory is read-only, so without it every cold start compiles every module: "
    "init 1.6-2.0x slower) and the build machines have CPython 3.13, not 3.14; "
    "once the build has a CPython 3.14, move to it."
)
ARCHITECTURE: Final = lambda_.Architecture.ARM_64
ALIAS_NAME: Final = "live"


@dataclass(frozen=True)
class Tuning:
    memory_mb: int = 512
    timeout_seconds: int = 10
    snap_start: bool = False


TUNING: Final[Mapping[str, Tuning]] = {
    # Init (importing the MCP SDK and its pydantic models) is ~1 s of CPU even with bytecode:
    # SnapStart restores an initialised snapshot instead of re-running it at this CPU share.
    # 256 MB for its CPU share, not its memory: peak RSS measured by `make bench` is 82 MiB
    # (99 MiB with tracing on); a warm call is ~1.3 ms of CPU (~9 ms at 256 / 1,769 of a vCPU).
    # The restore and snapshot-cache charges scale with memory (README, Cost: smaller sizes'
    # cost and latency).
    "mcp_server": Tuning(memory_mb=256, timeout_seconds=20, snap_start=True),
    # A reconciliation run pages every grant holder (infra/deprovisioning.py): minutes, not seconds.
    "deprovisioning": Tuning(memory_mb=256, timeout_seconds=900),
}

DynamoAction = str  # "dynamodb:GetItem" ...


@dataclass(frozen=True)
class Access:
    """What a function's role may do. Empty means no AWS access at all."""

    tables: Mapping[str, tuple[DynamoAction, ...]] = field(default_factory=dict)
    # dynamodb:Query on exactly these global secondary indexes of a table (never the table, never index/*).
    indexes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    kms_encrypt: bool = False
    kms_decrypt: bool = False
    describe_gateway_client: bool = False  # reads the gateway client secret at cold start


ACCESS: Final[Mapping[str, Access]] = {
    "mcp_server": Access(
        tables={
            "grants": ("dynamodb:GetItem",),
            # A grant counts only while its registered client exists (RFC 7592 section 2.3).
            "clients": ("dynamodb:GetItem",),
            # + the app's own tables, with the actions its manifest declares (access_for).
        }
    ),
    "metadata": Access(),
    # docs/storage-schema.md, "Who may touch what". TransactWriteItems is authorized per
    # contained operation: the registration's transaction holds two Puts (client, DEDUPE).
    "registration": Access(
        tables={
            "clients": (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchGetItem",
            ),
            "artefacts": ("dynamodb:UpdateItem",),
        }
    ),
    "authorization": Access(
        tables={
            # UpdateItem and DeleteItem: the connected-agents page revokes grants (grant, chain
            # head) and forgets consents through the one GrantRevoker.
            "grants": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            "clients": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
            "artefacts": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        },
        # The connected-agents page lists the signed-in person's grants; by_client is the admin's.
        indexes={"grants": (GRANTS_BY_USER.name,)},
        kms_encrypt=True,
        kms_decrypt=True,
        describe_gateway_client=True,
    ),
    "token": Access(
        tables={
            "grants": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            "clients": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
            "artefacts": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        },
        kms_encrypt=True,
        kms_decrypt=True,
        describe_gateway_client=True,
    ),
    # Revokes through GrantRevoker (grant, chain head, consent, Cognito's refresh token) and
    # narrows grants; index reads and Cognito reads are added by infra/deprovisioning.py.
    "deprovisioning": Access(
        tables={"grants": ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")},
        kms_decrypt=True,
        describe_gateway_client=True,
    ),
}


def access_for(function: str, app: AppManifest, grant_indexes: Collection[str] = GRANT_INDEX_NAMES) -> Access:
    """``ACCESS[function]``; the MCP function also gets each app table's declared actions.

    Query on a grants-table index only if the stack creates it (``grant_indexes``,
    ``kit:grantIndexes``): no permission on an index that does not exist (least privilege).
    """
    access = ACCESS.get(function, Access())
    indexes = {
        table: kept
        for table, names in access.indexes.items()
        if (kept := tuple(n for n in names if table != "grants" or n in grant_indexes))
    }
    access = replace(access, indexes=indexes)
    if function != APP_FUNCTION:
        return access
    return replace(access, tables={**access.tables, **{t.name: t.actions for t in app.tables}})


def grant_dynamodb(role: iam.IGrantable, table: dynamodb.ITable, actions: tuple[DynamoAction, ...]) -> None:
    """Exactly ``actions`` on the table itself (no index or stream ARNs)."""
    if not actions or not all(a.startswith("dynamodb:") and "*" not in a for a in actions):
        raise ValueError(f"explicit dynamodb actions required, got {actions!r}")
    # Not table.grant(): on a table with indexes that also grants "<table>/index/*".
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[table.table_arn])
    )


def grant_index_query(role: iam.IGrantable, table: dynamodb.ITable, index_names: tuple[str, ...]) -> None:
    """``dynamodb:Query`` on exactly these global secondary indexes of ``table`` (not the table, not ``index/*``)."""
    if not index_names or any("*" in name for name in index_names):
        raise ValueError(f"explicit index names required, got {index_names!r}")
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["dynamodb:Query"],
            resources=[f"{table.table_arn}/index/{name}" for name in index_names],
        )
    )


def grant_kms(role: iam.IGrantable, key: kms.IKey, *, encrypt: bool, decrypt: bool) -> None:
    actions = [a for a, wanted in (("kms:Encrypt", encrypt), ("kms:Decrypt", decrypt)) if wanted]
    if actions:
        key.grant(role, *actions)


def grant_describe_client(role: iam.IGrantable, pool: cognito.IUserPool) -> None:
    """cognito-idp:DescribeUserPoolClient on this pool only (the action's resource is the pool)."""
    pool.grant(role, "cognito-idp:DescribeUserPoolClient")


@dataclass(frozen=True)
class SharedResources:
    """What grants may point at."""

    tables: Mapping[str, dynamodb.ITable]
    key: kms.IKey
    user_pool: cognito.IUserPool


# Lambda refuses a function whose environment variables total more than 4 KB (keys and values).
ENVIRONMENT_LIMIT_BYTES: Final = 4096
# What a value CloudFormation resolves at deploy (a table name, a key id, an ARN, a URL) is counted as.
TOKEN_ESTIMATE_BYTES: Final = 128


def check_environment_size(function: str, environment: Mapping[str, str]) -> None:
    """Fail at synth, not at deploy, when ``environment`` cannot fit Lambda's 4 KB.

    Values not known before deploy (CloudFormation tokens) count ``TOKEN_ESTIMATE_BYTES``.
    Raises ``ConfigError`` naming the function and its largest variables (operator settings such
    as ``kit:redirectPatterns`` or ``kit:allowedOrigins`` are what grow).
    """

    def size(name: str, value: str) -> int:
        estimated = TOKEN_ESTIMATE_BYTES if cdk.Token.is_unresolved(value) else len(value.encode())
        return len(name.encode()) + estimated

    total = sum(size(name, value) for name, value in environment.items())
    if total > ENVIRONMENT_LIMIT_BYTES:
        largest = sorted(environment, key=lambda name: -size(name, environment[name]))[:3]
        raise ConfigError(
            f"{function}: its environment would be about {total} bytes, over Lambda's 4 KB "
            f"({ENVIRONMENT_LIMIT_BYTES} bytes); largest: {', '.join(largest)}"
        )


class KitFunction(Construct):
    """One Lambda function with the kit's shared defaults; route traffic to :attr:`alias`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
        app: AppManifest,
        tuning: Tuning | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        tuning = tuning or TUNING.get(spec.name, Tuning())
        environment = {
            **environment,
            "POWERTOOLS_SERVICE_NAME": spec.name,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # Events carry bearer tokens, codes and secrets: never log them.
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        }
        check_environment_size(spec.name, environment)
        self.spec = spec
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        # An explicit role instead of AWSLambdaBasicExecutionRole: it may write to its own log
        # group only, not to every log group in the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"mcp-cognito-kit {spec.name} function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=code or lambda_code(spec.name, app.root),
            role=self.role,
            memory_size=tuning.memory_mb,
            timeout=cdk.Duration.seconds(tuning.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            # JSON logs, and the platform's START/END/REPORT lines dropped (system level WARN):
            # ~300 bytes per invocation of log ingestion; Duration, Errors and Throttles stay
            # as CloudWatch metrics. The kit's own lines are already JSON (Powertools).
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if tuning.snap_start else None,
            # Superseded versions are deleted on deploy: each SnapStart version kept would keep
            # its snapshot cache billed (per GB-second, for as long as the version exists).
            current_version_options=lambda_.VersionOptions(removal_policy=cdk.RemovalPolicy.DESTROY),
            description=f"mcp-cognito-kit {spec.name}",
            environment=environment,
        )
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_REASON)
        # API Gateway invokes a published version through an alias: with SnapStart only
        # published versions are snapshotted, and the alias moves atomically on deploy.
        self.alias = lambda_.Alias(self, "Alias", alias_name=ALIAS_NAME, version=self.function.current_version)
        if tuning.snap_start:
            acknowledge_warning(
                self.function,
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "The function publishes currentVersion and API Gateway invokes it through the alias.",
            )

    def apply_access(self, access: Access, shared: SharedResources) -> None:
        for table_key, actions in access.tables.items():
            if table_key not in shared.tables:
                raise KeyError(f"{self.spec.name}: no table {table_key!r}; known: {sorted(shared.tables)}")
            grant_dynamodb(self.role, shared.tables[table_key], actions)
        for table_key, index_names in access.indexes.items():
            grant_index_query(self.role, shared.tables[table_key], index_names)
        grant_kms(self.role, shared.key, encrypt=access.kms_encrypt, decrypt=access.kms_decrypt)
        if access.describe_gateway_client:
            grant_describe_client(self.role, shared.user_pool)
