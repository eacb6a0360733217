"""The kit's CloudWatch metrics: every name, its dimensions, and the one way to count one.

Each function writes them as CloudWatch Embedded Metric Format (EMF) log lines through
Powertools Metrics (namespace :data:`NAMESPACE`, dimension ``service`` = the function's
name from ``POWERTOOLS_SERVICE_NAME``). A metric without extra dimensions is aggregated in
the invocation and flushed once at its end (:func:`flushed`, one EMF line per invocation);
a metric with dimensions (tool, outcome, reason) is written at once as its own EMF line,
because one EMF document carries one dimension set.

A metric whose event is already a log line is not written twice: :data:`LOG_METRICS` declares
it as a CloudWatch Logs metric filter on that line (``ToolCalls``: the ``tool.called`` audit
event), which the stack creates on the writing function's log group (metric filters need the
Standard log class, as EMF does). A metric filter takes a dimension's value from a field of
the event, and CloudWatch Logs may disable a filter that yields 1,000 distinct dimension values
within an hour (PutMetricFilter API reference), so caller-chosen text never reaches one: a
``tools/call`` of an unknown tool (its audit ``tool`` is the caller's name) is left out of
the filter and counted by one EMF line with the bounded value :data:`UNKNOWN_TOOL`.

Dimension values are bounded sets (tool names of the registry, outcome and reason
literals), never caller-chosen text: each distinct value is a CloudWatch metric, billed.
The dashboard and alarms (infra/monitoring.py) read :data:`METRICS`, so a name or a
dimension set exists once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, Final, Literal, TypeVar, cast

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from functions.core.platform.observability import NAMESPACE, metrics

MetricName = Literal[
    "ToolCalls",
    "AuthenticationFailures",
    "StepUpChallenges",
    "TokensIssued",
    "TokensRefreshed",
    "RefreshReuseDetected",
    "CodeReplayDetected",
    "ClientsRegistered",
    "RegistrationsThrottled",
    "CimdFetchFailures",
    "ClientDocumentUnavailable",
    "DependencyUnavailable",
]

# Each metric's dimensions besides ``service`` (CloudWatch identifies a metric by its name
# and its whole dimension set; the dashboard's searches and the alarms use exactly these).
METRICS: Final[dict[MetricName, tuple[str, ...]]] = {
    "ToolCalls": ("tool", "outcome"),  # every MCP tools/call; outcome: success, denied, error
    "AuthenticationFailures": ("reason",),  # /mcp 401s by reason (no token, token rejected, grant inactive)
    "StepUpChallenges": (),  # /mcp 403 insufficient_scope
    "TokensIssued": (),  # authorization_code redeemed
    "TokensRefreshed": (),  # refresh_token rotated or answered again in its grace
    "RefreshReuseDetected": (),  # a rotated refresh token presented after its grace (grant revoked)
    "CodeReplayDetected": (),  # a redeemed code presented again (grant revoked)
    "ClientsRegistered": (),  # RFC 7591 registrations that created a client
    "RegistrationsThrottled": (),  # registrations answered 429
    # client ID metadata documents not admitted; outcome: refused (unknown client), unavailable
    # (transient: the document host timed out, refused, reset, answered 408/429/5xx; a 503 "retry")
    "CimdFetchFailures": ("outcome",),
    # 503 + Retry-After answered because a client's metadata document cannot be fetched now: the
    # client's host, not the kit, so the API 5xx alarm leaves them out (infra/monitoring.py)
    "ClientDocumentUnavailable": (),
    "DependencyUnavailable": (),  # every 503 + Retry-After for the kit's own dependencies
}

# The ``tool`` dimension of a tools/call whose name the registry does not know (parentheses
# are outside the characters MCP recommends for tool names), and that call's audit ``reason``.
UNKNOWN_TOOL: Final = "(unknown)"
UNKNOWN_TOOL_REASON: Final = "unknown_tool"


@dataclass(frozen=True)
class LogMetric:
    """A metric counted by a CloudWatch Logs metric filter on JSON log lines of one function.

    A line counts 1 when every ``match`` field (a dotted path into the line) equals its value
    and no ``unless`` field does (an absent field does not); each dimension takes its value
    from the line's field at the path ``dimensions`` gives it (the dimension set of
    :data:`METRICS` plus ``service``).
    """

    writer: str  # the function whose log group carries the lines
    match: Mapping[str, str]
    unless: Mapping[str, str]
    dimensions: Mapping[str, str]


LOG_METRICS: Final[Mapping[MetricName, LogMetric]] = {
    # One per tools/call of a registered tool, from its tool.called audit line (audit.py).
    "ToolCalls": LogMetric(
        writer="mcp_server",
        match={"audit.action": "tool.called"},
        unless={"audit.reason": UNKNOWN_TOOL_REASON},
        dimensions={"service": "service", "tool": "audit.tool", "outcome": "audit.outcome"},
    ),
}

_F = TypeVar("_F", bound=Callable[..., Any])


def count(name: MetricName, **dimensions: str) -> None:
    """Add 1 (unit Count) to ``name``; ``dimensions`` must be exactly those of :data:`METRICS`.

    Raises ``ValueError`` for another dimension set (the dashboard would never see the metric).
    """
    if tuple(sorted(dimensions)) != tuple(sorted(METRICS[name])):
        raise ValueError(f"metric {name} has dimensions {METRICS[name]}, got {tuple(dimensions)}")
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(
        name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE, default_dimensions=dimensions
    ) as metric:
        if metrics.service:
            metric.add_dimension(name="service", value=str(metrics.service))


def flushed(handler: _F) -> _F:
    """Decorator for a Lambda handler: write the invocation's aggregated metrics when it ends.

    As Powertools ``log_metrics`` (flushed also when the handler raises), without a cold-start
    metric; an invocation that counted nothing writes nothing and warns nothing.
    """

    @wraps(handler)
    def run(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            # Most invocations count nothing: Powertools would warn (UserWarning) for each such
            # flush, a function log line for nothing; an empty set is simply not flushed.
            if metrics.metric_set:
                metrics.flush_metrics()

    return cast(_F, run)
