"""Small DynamoDB helpers shared by the repositories (low-level client, no resource layer)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import DependencyError

_SER: Final = TypeSerializer()
_DESER: Final = TypeDeserializer()
CONDITION_FAILED: Final = "ConditionalCheckFailedException"


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESER.deserialize(v) for k, v in item.items()}


class ConditionFailed(Exception):
    """A conditional write lost: the artefact already exists, was used, or changed."""


@contextmanager
def dependency_call(what: str) -> Iterator[None]:
    """Map AWS failures to ``DependencyError`` (503) and lost conditions to ``ConditionFailed``."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
            raise ConditionFailed(what) from exc
        raise DependencyError(f"{what} failed: {exc.response.get('Error', {}).get('Code', 'unknown')}") from exc
    except BotoCoreError as exc:
        raise DependencyError(f"{what} failed: {exc.__class__.__name__}") from exc
