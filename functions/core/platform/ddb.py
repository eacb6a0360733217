"""Small DynamoDB helpers shared by the repositories (low-level client, no resource layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.platform import aws
from functions.core.platform.attribute_values import deserialize, serialize
from functions.core.platform.aws import aws_call
from functions.core.platform.errors import DependencyError

CONDITION_FAILED: Final = "ConditionalCheckFailedException"


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values as DynamoDB ``AttributeValue``s (``attribute_values.serialize``); None ones are left out."""
    return {k: serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's ``AttributeValue``s as plain values (numbers as ``Decimal``, binary as ``bytes``)."""
    return {k: deserialize(v) for k, v in item.items()}


class ConditionFailed(Exception):
    """A conditional write lost: the artefact already exists, was used, or changed."""


def dependency_call(what: str) -> AbstractContextManager[None]:
    """Map AWS failures to ``DependencyError`` (503) and lost conditions to ``ConditionFailed``."""
    return aws_call(what, {CONDITION_FAILED: ConditionFailed})


TRANSACTION_CANCELED: Final = "TransactionCanceledException"


def transact(
    ddb: Any, items: Sequence[Mapping[str, Any]], what: str, losers: Sequence[tuple[int, type[Exception]]]
) -> None:
    """One ``TransactWriteItems``: all of ``items`` are written, or none.

    A cancellation because a condition failed raises the exception paired with the first
    index of ``losers`` whose condition failed (else ``ConditionFailed``); any other failure
    (throttling, a conflicting transaction, the network) is a ``DependencyError``, after which
    nothing was written and the request is safe to retry. The one decoder of
    ``TransactionCanceledException`` (DynamoDB API reference, "TransactWriteItems":
    ``CancellationReasons`` are in item order).
    """
    try:
        ddb.transact_write_items(TransactItems=list(items))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown")
        if code == TRANSACTION_CANCELED:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            failed = {i for i, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"}
            for index, error in losers:
                if index in failed:
                    raise error(what) from exc
            if failed:
                raise ConditionFailed(what) from exc
        raise DependencyError(f"{what} failed: {code}") from exc
    except BotoCoreError as exc:
        raise DependencyError(f"{what} failed: {exc.__class__.__name__}") from exc


class DynamoTable:
    """Base of the DynamoDB repositories: one table, and the container's shared client.

    ``client`` is for tests; otherwise ``aws.dynamodb()`` is looked up on each use, so the
    client is created on first use (cold start) and can be replaced by patching ``aws``.
    """

    def __init__(self, table: str, client: Any = None) -> None:
        self._table = table
        self._client = client

    @property
    def _ddb(self) -> Any:
        return self._client or aws.dynamodb()

    def _put_new(self, item: dict[str, Any], what: str) -> None:
        """Put ``item`` (``AttributeValue``s, e.g. ``ItemKind.to_item``) unless an item with its
        ``pk`` exists (else ``ConditionFailed``); ``DependencyError`` on any other failure."""
        with dependency_call(what):
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def _update_if(self, pk: str, what: str, **update: Any) -> bool:
        """Conditional ``UpdateItem`` of the item with this ``pk``; False when its condition fails.

        ``update`` holds ``UpdateExpression``, ``ConditionExpression`` and their attribute names
        and values; any other failure is ``DependencyError``. For the updates whose refusal is an
        answer (already revoked, over the limit, gone), not an error.
        """
        try:
            with dependency_call(what):
                self._ddb.update_item(TableName=self._table, Key={"pk": {"S": pk}}, **update)
        except ConditionFailed:
            return False
        return True

    def _get(self, pk: str, what: str) -> dict[str, Any] | None:
        """The item with this ``pk`` (strongly consistent read), deserialized, or None."""
        with dependency_call(what):
            resp = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        item = resp.get("Item")
        return None if item is None else from_item(item)
