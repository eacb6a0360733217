"""Monitoring: a CloudWatch dashboard and alarms to an encrypted SNS topic.

The dashboard shows the kit's own metrics (functions/core/platform/metrics.py, namespace
``McpCognitoKit``, dimension ``service`` = the function's name; EMF lines, and metric filters
on log lines that already carry the event: ``LOG_METRICS``) next to the API, Lambda and
DynamoDB basics. Alarms: API 5xx rate (less the 503s for a client's unreachable metadata
document: ``DOCUMENT_ANSWERERS``), Lambda errors, throttles and p99 duration per
function, DynamoDB throttling per table, and any refresh-token reuse or code replay (each is
a revoked grant and possibly a stolen credential: OAuth 2.1 section 4.3.1, RFC 6749
section 4.1.2). ``kit:alarmEmail`` subscribes someone to the topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from functions.core.platform.metrics import LOG_METRICS, METRICS, LogMetric
from functions.core.platform.observability import NAMESPACE

PERIOD: Final = cdk.Duration.minutes(5)
# API 5xx above this share of requests (percent, over PERIOD, at least MIN_REQUESTS requests).
SERVER_ERROR_PERCENT: Final = 5
MIN_REQUESTS: Final = 20
# p99 duration alarm: this share of the function's timeout.
P99_TIMEOUT_SHARE: Final = 0.8
# Detections that revoke a grant: any one is worth a look (metric, function emitting it).
DETECTIONS: Final = (("RefreshReuseDetected", "token"), ("CodeReplayDetected", "token"))
# The functions that answer 503 when a client's metadata document cannot be fetched now
# (ClientDocumentUnavailable): the client's own host is down or busy, not the kit, so those
# 503s are left out of the API 5xx alarm and shown on the dashboard instead.
DOCUMENT_ANSWERERS: Final = ("authorization", "token")


def kit_metric(name: str, service: str, **dimensions: str) -> cw.Metric:
    """One of the kit's EMF metrics as emitted by function ``service`` (sum over PERIOD)."""
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service, **dimensions},
        statistic="Sum",
        period=PERIOD,
    )


def filter_pattern(metric: LogMetric) -> logs.JsonPattern:
    """The metric filter pattern of ``metric``: every ``match`` field equal, no ``unless`` field equal.

    An ``unless`` field that is absent does not exclude the line (``NOT EXISTS`` is spelled
    out rather than relying on how ``!=`` treats a missing field).
    """
    terms = [logs.FilterPattern.string_value(f"$.{path}", "=", value) for path, value in metric.match.items()]
    terms += [
        logs.FilterPattern.any(
            logs.FilterPattern.not_exists(f"$.{path}"), logs.FilterPattern.string_value(f"$.{path}", "!=", value)
        )
        for path, value in metric.unless.items()
    ]
    return logs.FilterPattern.all(*terms)


def _search(name: str) -> cw.MathExpression:
    """Every series of kit metric ``name`` (by service, and by its own dimensions)."""
    keys = ",".join(["service", *METRICS[name]])  # type: ignore[index]
    return cw.MathExpression(
        expression=f"SEARCH('{{{NAMESPACE},{keys}}} MetricName=\"{name}\"', 'Sum', {int(PERIOD.to_seconds())})",
        label=name,
        period=PERIOD,
    )


class KitMonitoring(Construct):
    """Dashboard, alarms and their SNS topic for the kit's API, functions and tables."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.HttpApi,
        functions: Mapping[str, lambda_.Function],
        tables: Mapping[str, dynamodb.Table],
        email: str | None,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: a key of
        # its own, usable by CloudWatch of this account only, and by nothing else.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="mcp-cognito-kit: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(self, "Alarms", display_name="mcp-cognito-kit alarms", master_key=self.key)
        # AwsSolutions-SNS3: only TLS publishers.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        # A topic policy replaces SNS's default one, whose account-wide Allow is what lets
        # CloudWatch publish: without this statement every alarm action fails with "not
        # authorized to perform: SNS:Publish" (alarm history only). This account's alarms only.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        if email is not None:
            self.topic.add_subscription(subs.EmailSubscription(email))
        self.alarms: dict[str, cw.Alarm] = {}
        self._api_alarms(api)
        for name, fn in functions.items():
            self._function_alarms(name, fn)
        for key, table in tables.items():
            self._table_alarm(key, table)
        for metric, service in DETECTIONS:
            self._alarm(
                metric,
                kit_metric(metric, service),
                threshold=1,
                description=f"{metric}: a grant was revoked because a credential was presented twice",
            )
        self.metric_filters = {
            name: self._metric_filter(name, metric, functions[metric.writer])
            for name, metric in LOG_METRICS.items()
            if metric.writer in functions
        }
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        self._widgets(api, functions, tables)

    def _metric_filter(self, name: str, metric: LogMetric, fn: lambda_.Function) -> logs.MetricFilter:
        """``name`` counted from ``fn``'s log lines: 1 per matching line, dimensions from its fields.

        No default value: lines that do not match publish nothing, as EMF writes nothing for them.
        """
        return logs.MetricFilter(
            self,
            f"{name}Filter",
            log_group=fn.log_group,
            filter_pattern=filter_pattern(metric),
            metric_namespace=NAMESPACE,
            metric_name=name,
            metric_value="1",
            unit=cw.Unit.COUNT,
            dimensions={dimension: f"$.{path}" for dimension, path in metric.dimensions.items()},
        )

    def _alarm(self, alarm_id: str, metric: cw.IMetric, *, threshold: float, description: str) -> None:
        alarm = cw.Alarm(
            self,
            alarm_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms[alarm_id] = alarm

    def _api_alarms(self, api: apigw.HttpApi) -> None:
        errors = api.metric_server_error(period=PERIOD, statistic="Sum")
        count = api.metric_count(period=PERIOD, statistic="Sum")
        documents = {
            f"documents{i}": kit_metric("ClientDocumentUnavailable", s) for i, s in enumerate(DOCUMENT_ANSWERERS)
        }
        own = "errors" + "".join(f" - FILL({key}, 0)" for key in documents)
        rate = cw.MathExpression(
            expression=f"IF(requests >= {MIN_REQUESTS}, 100 * ({own}) / requests, 0)",
            using_metrics={"errors": errors, "requests": count, **documents},
            label="API 5xx %",
            period=PERIOD,
        )
        self._alarm("Api5xxRate", rate, threshold=SERVER_ERROR_PERCENT, description="API 5xx responses, percent")

    def _function_alarms(self, name: str, fn: lambda_.Function) -> None:
        label = name.replace("_", " ")
        self._alarm(
            f"{name}-errors",
            fn.metric_errors(period=PERIOD, statistic="Sum"),
            threshold=1,
            description=f"{label}: invocations that failed (unhandled errors, timeouts)",
        )
        self._alarm(
            f"{name}-throttles",
            fn.metric_throttles(period=PERIOD, statistic="Sum"),
            threshold=1,
            description=f"{label}: invocations throttled by Lambda concurrency",
        )
        self._alarm(
            f"{name}-p99-duration",
            fn.metric_duration(period=PERIOD, statistic="p99"),
            threshold=fn.timeout.to_milliseconds() * P99_TIMEOUT_SHARE if fn.timeout else 1000,
            description=f"{label}: p99 duration above {int(P99_TIMEOUT_SHARE * 100)}% of the timeout",
        )

    def _table_alarm(self, key: str, table: dynamodb.Table) -> None:
        throttled = cw.MathExpression(
            expression="reads + writes",
            using_metrics={
                "reads": table.metric("ReadThrottleEvents", period=PERIOD, statistic="Sum"),
                "writes": table.metric("WriteThrottleEvents", period=PERIOD, statistic="Sum"),
            },
            label=f"{key} throttle events",
            period=PERIOD,
        )
        self._alarm(
            f"{key}-table-throttles",
            throttled,
            threshold=1,
            description=f"DynamoDB {key} table: throttled reads or writes",
        )

    def _widgets(
        self, api: apigw.HttpApi, functions: Mapping[str, lambda_.Function], tables: Mapping[str, dynamodb.Table]
    ) -> None:
        def graph(title: str, metrics: Sequence[cw.IMetric]) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(metrics), width=8, height=6)

        fns = list(functions.items())
        self.dashboard.add_widgets(
            graph(
                "API requests, 4xx, 5xx",
                [
                    api.metric_count(period=PERIOD),
                    api.metric_client_error(period=PERIOD),
                    api.metric_server_error(period=PERIOD),
                ],
            ),
            graph("API latency p99", [api.metric_latency(period=PERIOD, statistic="p99")]),
            graph("Dependency 503s (Retry-After)", [_search("DependencyUnavailable")]),
        )
        self.dashboard.add_widgets(
            graph("Lambda errors", [fn.metric_errors(period=PERIOD, label=n) for n, fn in fns]),
            graph("Lambda throttles", [fn.metric_throttles(period=PERIOD, label=n) for n, fn in fns]),
            graph(
                "Lambda duration p99", [fn.metric_duration(period=PERIOD, statistic="p99", label=n) for n, fn in fns]
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "DynamoDB throttle events",
                [
                    t.metric("ReadThrottleEvents", period=PERIOD, statistic="Sum", label=f"{k} reads")
                    for k, t in tables.items()
                ]
                + [
                    t.metric("WriteThrottleEvents", period=PERIOD, statistic="Sum", label=f"{k} writes")
                    for k, t in tables.items()
                ],
            ),
            graph("Tool calls by tool and outcome", [_search("ToolCalls")]),
            graph(
                "Authentication failures by reason", [_search("AuthenticationFailures"), _search("StepUpChallenges")]
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)
        )
        self.dashboard.add_widgets(
            graph("Tokens", [_search("TokensIssued"), _search("TokensRefreshed")]),
            graph("Detections", [_search("RefreshReuseDetected"), _search("CodeReplayDetected")]),
            graph(
                "Registrations",
                [
                    _search("ClientsRegistered"),
                    _search("RegistrationsThrottled"),
                    _search("CimdFetchFailures"),
                    _search("ClientDocumentUnavailable"),
                ],
            ),
        )
