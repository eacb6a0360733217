"""DynamoDB tables: on-demand, TTL, point-in-time recovery, encrypted, retained by default.

What the tables are (keys, TTL attribute, indexes, the variable carrying each name) is the
deployment topology's (``functions.core.platform.topology.TABLES`` and the app's manifest),
which ``make dev`` seeds too; this module only turns it into CloudFormation.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from functions.core.platform.topology import TABLES, TableSpec


def _string_key(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


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
                sort_key=_string_key(spec.sort_key),
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
                    sort_key=_string_key(index.sort_key),
                    projection_type=(
                        dynamodb.ProjectionType.ALL
                        if index.non_key_attributes is None
                        else dynamodb.ProjectionType.INCLUDE
                    ),
                    non_key_attributes=None if index.non_key_attributes is None else list(index.non_key_attributes),
                )
            self.specs[spec.key] = spec
            self.tables[spec.key] = table

    def table(self, key: str) -> dynamodb.Table:
        try:
            return self.tables[key]
        except KeyError:
            raise KeyError(f"no table {key!r}; known: {sorted(self.tables)}") from None
