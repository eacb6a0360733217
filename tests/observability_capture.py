"""What the functions write while a test runs: log lines (audit events) and EMF metric lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from functions.core.platform.metrics import LOG_METRICS, LogMetric
from functions.core.platform.observability import NAMESPACE, logger, metrics

_ABSENT = object()


def _field(line: dict[str, Any], path: str) -> Any:
    value: Any = line
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def filtered(metric: LogMetric, line: dict[str, Any]) -> dict[str, Any] | None:
    """The dimensions ``metric``'s metric filter publishes for ``line`` (a JSON log line), or None.

    As CloudWatch Logs applies the pattern ``infra.monitoring.filter_pattern`` renders (its
    exact text is pinned by tests/infra/test_monitoring.py).
    """
    if any(_field(line, path) != value for path, value in metric.match.items()):
        return None
    if any(_field(line, path) == value for path, value in metric.unless.items()):
        return None
    return {dimension: _field(line, path) for dimension, path in metric.dimensions.items()}


@dataclass
class Captured:
    """The log stream and the EMF documents seen; ``text`` is everything written, verbatim."""

    logs: io.StringIO = field(default_factory=io.StringIO)
    capsys: pytest.CaptureFixture[str] | None = None
    _stdout: list[str] = field(default_factory=list)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.logs.getvalue().splitlines() if x.strip()]

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        found = [line["audit"] for line in self.lines() if "audit" in line]
        return [e for e in found if action is None or e["action"] == action]

    def stdout(self) -> str:
        if self.capsys is not None:
            self._stdout.append(self.capsys.readouterr().out)
        return "".join(self._stdout)

    def emf(self) -> list[dict[str, Any]]:
        """Every EMF document written (to stdout) so far, plus the metrics not yet flushed."""
        docs = []
        for raw in self.stdout().splitlines():
            if raw.startswith("{") and '"_aws"' in raw:
                doc = json.loads(raw)
                if doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE:
                    docs.append(doc)
        return docs

    def counted(self, name: str, **dimensions: str) -> float:
        """Sum of ``name`` over the EMF documents whose dimensions include ``dimensions``, over
        the invocation's metrics not flushed yet (no extra dimensions), and over the log lines
        its metric filter (``LOG_METRICS``) would count with those dimensions."""
        total = 0.0
        if name in LOG_METRICS:
            for line in self.lines():
                found = filtered(LOG_METRICS[name], line)  # type: ignore[index]
                if found is not None and all(found.get(k) == v for k, v in dimensions.items()):
                    total += 1
        for doc in self.emf():
            names = {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            if name in names and all(doc.get(k) == v for k, v in dimensions.items()):
                value = doc[name]
                total += sum(value) if isinstance(value, list) else value
        if not dimensions and name in metrics.metric_set:
            total += sum(metrics.metric_set[name]["Value"])
        return total

    def text(self) -> str:
        return self.logs.getvalue() + self.stdout()


@contextmanager
def capturing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    # The local stack's environment turns EMF off (POWERTOOLS_METRICS_DISABLED); a worker that
    # ran a moto-backed test first still has it, so the capture turns metrics back on.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics.clear_metrics()
    capsys.readouterr()
    captured = Captured(capsys=capsys)
    monkeypatch.setattr(logger.registered_handler, "stream", captured.logs)
    try:
        yield captured
    finally:
        metrics.clear_metrics()
