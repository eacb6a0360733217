"""DynamoDB tables: on-demand, TTL, point-in-time recovery, encrypted, retained by default.

The kit's own tables are :data:`TABLES`; a kit table's name reaches every function whose
settings model declares its environment variable (see ``infra.functions``). The app's tables
come from its manifest (:func:`app_table_specs`) and reach the MCP function together, as the
JSON of ``APP_TABLES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from functions.core.platform.kit_app import AppManifest
from functions.core.platform.settings import Env
from functions.core.state.grant_index import GRANT_INDEXES, IndexSpec


@dataclass(frozen=True)
class TableSpec:
    key: str  # construct id and the name used by infra.functions.ACCESS
    env: str | None  # the variable (functions.core.platform.settings.Env) carrying the name; None: an app table
    partition_key: str = "pk"
    sort_key: str | None = None
    ttl_attribute: str | None = "ttl"
    indexes: tuple[IndexSpec, ...] = ()  # global secondary indexes (String keys, INCLUDE projection)


# The kit's data model (docs/storage-schema.md). One line per table.
TABLES: Final[tuple[TableSpec, ...]] = (
    TableSpec("grants", Env.GRANTS_TABLE, indexes=GRANT_INDEXES),
    TableSpec("clients", Env.CLIENTS_TABLE),
    TableSpec("artefacts", Env.ARTEFACTS_TABLE),
)


def app_table_specs(app: AppManifest) -> tuple[TableSpec, ...]:
    """The app's tables (its manifest's ``tables``), keyed by their manifest names."""
    return tuple(TableSpec(t.name, None, sort_key=t.sort_key, ttl_attribute=t.ttl_attribute) for t in app.tables)


class KitTables(Construct):
    """All of the kit's tables, by :attr:`TableSpec.key`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, specs: tuple[TableSpec, ...] = TABLES, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.specs: dict[str, TableSpec] = {}
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in specs:
            if spec.key in self.specs:
                raise ValueError(f"duplicate table key {spec.key!r}")
            table = dynamodb.Table(
                self,
                spec.key.title(),
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(
                    dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                    if spec.sort_key
                    else None
                ),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                time_to_live_attribute=spec.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                # KMS encryption with the AWS-owned DynamoDB key (aws/dynamodb): encrypted at rest
                # without putting kms:Decrypt on every role that reads a table. Secrets inside
                # items are hashes, and upstream tokens are encrypted again with the kit's key.
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                deletion_protection=retain,
                removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                    projection_type=dynamodb.ProjectionType.INCLUDE,
                    non_key_attributes=list(index.non_key_attributes),
                )
            self.specs[spec.key] = spec
            self.tables[spec.key] = table

    def table(self, key: str) -> dynamodb.Table:
        try:
            return self.tables[key]
        except KeyError:
            raise KeyError(f"no table {key!r}; known: {sorted(self.tables)}") from None
