"""Fixed-window rate limits: one counter per (bucket, source IP, minute) in the artefacts table.

``RATE#<bucket>#<ip>#<minute>`` gets ``ADD count 1`` with the condition ``count < limit``
(docs/storage-schema.md), so concurrent requests cannot overshoot; ``ttl`` = the end of
the minute + 60 s cleans the counters up. A request that counted and then failed on a
dependency gives its count back (``refund``): its 503 invites the identical retry
(RFC 9110 section 15.6.4, ``Retry-After``), which must not be refused for the failed try.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from functions.core.platform.ddb import DynamoTable
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger

RATE_PREFIX: Final = "RATE#"
WINDOW: Final = 60
# A source IP is IPv4 or IPv6 text; anything else is folded into one bucket, never stored raw.
_IP_TEXT: Final = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")


@dataclass(frozen=True)
class RateDecision:
    """The answer to one hit: allowed, else the seconds until the window ends (RFC 9110 ``Retry-After``)."""

    allowed: bool
    retry_after: int = 0  # seconds until the window resets (when not allowed)
    window: int = 0  # the minute (epoch seconds // 60) the hit was counted in


class RateLimiter(Protocol):
    """Fixed one-minute windows per (bucket, source IP)."""

    def hit(self, bucket: str, source_ip: str, limit: int) -> RateDecision:
        """Count one request unless ``limit`` are counted in this minute; ``DependencyError`` on failure."""
        ...

    def refund(self, bucket: str, source_ip: str, window: int) -> None:
        """Give back one hit counted in ``window`` (``RateDecision.window``); best effort:
        a failed refund is logged and leaves the hit counted, never raises."""
        ...


def rate_key(bucket: str, source_ip: str, window: int) -> str:
    """The counter's ``pk`` for ``bucket``, the source IP (folded when not IP text) and the minute."""
    return f"{RATE_PREFIX}{bucket}#{_ip_key(source_ip)}#{window}"


def _ip_key(source_ip: str) -> str:
    return source_ip if _IP_TEXT.match(source_ip) else "unknown"


def rate_window(now: float) -> tuple[int, int]:
    """(the minute of ``now`` as epoch seconds // 60, seconds until it ends, at least 1)."""
    minute = int(now // WINDOW)
    retry_after = max(1, (minute + 1) * WINDOW - int(now))
    return minute, retry_after


class DynamoRateLimiter(DynamoTable):
    """``RateLimiter`` on the artefacts table (``RATE#`` counters); ``clock`` gives epoch seconds."""

    def __init__(self, table: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(table, client)
        self._clock = clock

    def hit(self, bucket: str, source_ip: str, limit: int) -> RateDecision:
        """``ADD count 1`` conditional on ``count < limit``: concurrent hits cannot overshoot."""
        minute, retry_after = rate_window(self._clock())
        counted = self._update_if(
            rate_key(bucket, source_ip, minute),
            "rate limit",
            UpdateExpression="ADD #c :one SET #ttl = :ttl, kind = :kind",
            ConditionExpression="attribute_not_exists(#c) OR #c < :limit",
            ExpressionAttributeNames={"#c": "count", "#ttl": "ttl"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":ttl": {"N": str((minute + 1) * WINDOW + 60)},
                ":kind": {"S": "rate"},
            },
        )
        return RateDecision(True, window=minute) if counted else RateDecision(False, retry_after)

    def refund(self, bucket: str, source_ip: str, window: int) -> None:
        """``ADD count -1`` while ``count > 0`` (see ``RateLimiter.refund``); never raises."""
        try:
            # A failed condition: the window's counter is gone (expired), nothing to give back.
            self._update_if(
                rate_key(bucket, source_ip, window),
                "rate limit refund",
                UpdateExpression="ADD #c :minus",
                # Never below zero, and never creates a counter (the hit wrote it).
                ConditionExpression="#c > :zero",
                ExpressionAttributeNames={"#c": "count"},
                ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except DependencyError as exc:
            logger.warning("rate limit refund failed", extra={"reason": str(exc)})
