"""Deprovisioning in AWS: what makes the directory's changes reach the grants.

* A CloudTrail trail recording the account's write management events in this region:
  Cognito emits no EventBridge events of its own, and EventBridge receives "AWS API Call via
  CloudTrail" events only while a trail with logging is enabled (EventBridge user guide,
  "AWS service events delivered via AWS CloudTrail"). Log files go to a bucket of the stack
  (SSE-S3, TLS only, no public access, expiring after :data:`TRAIL_LOG_DAYS`), retained on
  stack deletion like any audit record.
* An EventBridge rule matching the admin calls on the kit's pool that end or narrow access
  (``functions.core.state.reconciliation``), targeting the deprovisioning function's alias.
* A schedule running the reconciliation backstop every :data:`RECONCILE_MINUTES`.

The function itself is built by the one factory (``infra.functions.KitFunction``) like every
other; this module adds only what the tables of ``infra.functions`` cannot express: Scan on
the ``by_user`` index, Query on it, and the two Cognito reads.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.core.platform.topology import GRANT_INDEX_NAMES, GRANTS_BY_USER
from functions.core.state.reconciliation import COGNITO_EVENT_SOURCE, NARROWING_CALLS, REVOKING_CALLS
from infra.functions import KitFunction, grant_index_query
from infra.nag import acknowledge

# The backstop's period: the bound on a change the event path missed (README, Deprovisioning).
RECONCILE_MINUTES: Final = 15
TRAIL_LOG_DAYS: Final = 90
# Cognito reads of the reconciliation: the user's state and their groups.
DIRECTORY_ACTIONS: Final = ("cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser")


class KitDeprovisioning(Construct):
    """Trail, event rule and schedule for the ``deprovisioning`` function, and its extra access.

    ``grant_indexes``: the grants-table indexes the stack creates; the Query and Scan on
    ``by_user`` are granted only when it is one of them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: KitFunction,
        grants: dynamodb.ITable,
        user_pool: cognito.IUserPool,
        grant_indexes: Collection[str] = GRANT_INDEX_NAMES,
    ) -> None:
        super().__init__(scope, construct_id)
        role = function.role
        # Without by_user (kit:grantIndexes, mid-upgrade) no permission on it: every run then
        # fails with IndexNotDeployed (Lambda errors alarm) until the index is deployed.
        if GRANTS_BY_USER.name in grant_indexes:
            grant_index_query(role, grants, (GRANTS_BY_USER.name,))
            # The backstop pages the index (never the table, never on a request path).
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:Scan"], resources=[f"{grants.table_arn}/index/{GRANTS_BY_USER.name}"]
                )
            )
        else:
            cdk.Annotations.of(self).add_warning_v2(
                "mcp-cognito-kit:noByUserIndex",
                "kit:grantIndexes lacks by_user: deprovisioning and the connected-agents page fail closed "
                "until it is deployed (README, 'Upgrade the kit').",
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(DIRECTORY_ACTIONS), resources=[user_pool.user_pool_arn])
        )

        self.bucket = s3.Bucket(
            self,
            "TrailLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(TRAIL_LOG_DAYS))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds CloudTrail log files written by CloudTrail only; CloudTrail itself records "
            "who reads them (data events can be added); server access logs would need another bucket.",
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            enable_file_validation=True,
        )

        target = targets.LambdaFunction(function.alias, retry_attempts=8, max_event_age=cdk.Duration.hours(1))
        self.rule = events.Rule(
            self,
            "CognitoAdminCalls",
            description="mcp-cognito-kit: Cognito admin calls that end or narrow agents' access",
            event_pattern=events.EventPattern(
                source=["aws.cognito-idp"],
                detail_type=["AWS API Call via CloudTrail"],
                detail={
                    "eventSource": [COGNITO_EVENT_SOURCE],
                    "eventName": sorted({*REVOKING_CALLS, *NARROWING_CALLS}),
                    "requestParameters": {"userPoolId": [user_pool.user_pool_id]},
                },
            ),
            targets=[target],
        )
        self.schedule = events.Rule(
            self,
            "Reconciliation",
            description="mcp-cognito-kit: deprovisioning backstop (every grant holder checked against the pool)",
            schedule=events.Schedule.rate(cdk.Duration.minutes(RECONCILE_MINUTES)),
            targets=[target],
        )
