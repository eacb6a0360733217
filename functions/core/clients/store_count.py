"""Counting registered clients without a Scan: sharded counters bucketed by expiry time.

Design and error bound: docs/storage-schema.md, clients table, ``COUNTER#clients#...``.

A client whose ``ttl`` is ``e`` counts +1 in the counter item of the bucket that ends at or
after ``e`` (buckets are ``width`` seconds, about an eighth of the idle lifetime) and of a
shard chosen by its client_id. A bucket that has ended holds only expired clients, so the live
count at ``now`` is the sum of the buckets that end after ``now``: TTL expiry frees capacity
without any write or Scan, and the counter items expire themselves. A refreshed ``ttl`` that
lands in a later bucket moves the count: +1 in the new bucket *before* the record is written,
-1 in the old one after, so a client is never uncounted while live (a failed decrement only
over-counts, until its bucket ends). Counter updates are plain ``ADD`` updates outside any
transaction: concurrent registrations never conflict on them.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

from functions.core.platform.ddb import dependency_call
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.platform.settings import DAY_SECONDS

COUNTER_PREFIX: Final = "COUNTER#clients#"
# Spread the counter writes of one bucket over a few items (one item takes ~1,000 writes/s).
SHARDS: Final = 4
# Buckets per idle lifetime: the count may include clients expired less than one bucket ago.
BUCKETS_PER_IDLE: Final = 8
_BATCH_ATTEMPTS: Final = 4


def bucket_seconds(idle_seconds: int) -> int:
    """Bucket width in seconds: whole days, about ``idle / BUCKETS_PER_IDLE``, at least a day."""
    days = max(1, -(-idle_seconds // DAY_SECONDS))
    return DAY_SECONDS * -(-days // BUCKETS_PER_IDLE)


def _bucket(expires_at: int, width: int) -> int:
    return -(-expires_at // width)  # the bucket ending at or after expires_at


def counter_key(client_id: str, expires_at: int, width: int) -> str:
    """The counter item that counts a client with this id and ``ttl`` (epoch seconds)."""
    shard = zlib.crc32(client_id.encode()) % SHARDS
    return f"{COUNTER_PREFIX}{width // DAY_SECONDS}d#{_bucket(expires_at, width)}#{shard}"


def live_counter_keys(now: int, idle_seconds: int) -> list[str]:
    """Every counter item that can count a client live at ``now``.

    Buckets ending after ``now`` up to the one holding ``now + idle`` (the latest ``ttl`` a
    write can set), plus one for clock skew between containers.
    """
    width = bucket_seconds(idle_seconds)
    first, last = now // width + 1, _bucket(now + idle_seconds, width) + 1
    return [f"{COUNTER_PREFIX}{width // DAY_SECONDS}d#{b}#{s}" for b in range(first, last + 1) for s in range(SHARDS)]


def counter_ttl(key: str) -> int:
    """When a counter item may be deleted: one bucket after its bucket ends (its clients are gone)."""
    width_days, bucket, _ = key.removeprefix(COUNTER_PREFIX).split("#")
    width = int(width_days.removesuffix("d")) * DAY_SECONDS
    return (int(bucket) + 1) * width


class DynamoClientCounter:
    """The counter items of the clients table, through a DynamoDB client."""

    def __init__(self, table: str, idle_seconds: int, ddb: Any) -> None:
        self._table = table
        self._idle = idle_seconds
        self._width = bucket_seconds(idle_seconds)
        self._ddb_source = ddb

    def key(self, client_id: str, expires_at: int) -> str:
        """The counter item counting ``client_id`` whose ``ttl`` is ``expires_at`` (epoch seconds)."""
        return counter_key(client_id, expires_at, self._width)

    def add(self, key: str, delta: int) -> None:
        """``ADD delta`` to one counter item; ``DependencyError`` on failure."""
        with dependency_call("count client"):
            self._ddb_source().update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD #c :d SET kind = :kind, #ttl = :ttl",
                ExpressionAttributeNames={"#c": "count", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":d": {"N": str(delta)},
                    ":kind": {"S": "counter"},
                    ":ttl": {"N": str(counter_ttl(key))},
                },
            )

    def undo(self, key: str) -> None:
        """-1 where it cannot matter much: a failure leaves an over-count until the bucket ends."""
        try:
            self.add(key, -1)
        except DependencyError as exc:
            logger.warning("client count decrement failed", extra={"reason": str(exc)})

    def total(self, now: int) -> int:
        """Clients counted live at ``now`` (strongly consistent reads, one BatchGetItem)."""
        pending: dict[str, Any] = {
            self._table: {
                "Keys": [{"pk": {"S": k}} for k in live_counter_keys(now, self._idle)],
                "ConsistentRead": True,
                "ProjectionExpression": "#c",
                "ExpressionAttributeNames": {"#c": "count"},
            }
        }
        count = 0
        with dependency_call("read client count"):
            for _ in range(_BATCH_ATTEMPTS):
                resp = self._ddb_source().batch_get_item(RequestItems=pending)
                count += sum(
                    int(i.get("count", {}).get("N", "0")) for i in resp.get("Responses", {}).get(self._table, [])
                )
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    return count
        raise DependencyError("read client count failed: unprocessed keys")
