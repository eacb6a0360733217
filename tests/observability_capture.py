"""What the functions write while a test runs: log lines (audit events) and EMF metric lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from functions.core.platform.observability import NAMESPACE, logger, metrics


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
        """Sum of ``name`` over the EMF documents whose dimensions include ``dimensions``, and
        over the invocation's metrics not flushed yet (no extra dimensions)."""
        total = 0.0
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
