"""The kit's DynamoDB attribute-value mapping matches boto3's TypeSerializer/TypeDeserializer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from functions.core.platform.attribute_values import deserialize, serialize

VALUES: list[Any] = [
    "text",
    "",
    0,
    -12,
    10**30,
    Decimal("1.25"),
    True,
    False,
    None,
    b"\x00\xffbytes",
    ["a", 1, None, [True]],
    ("t", 2),
    {"k": "v", "n": {"deep": [1, "x"]}},
    {"a", "b"},
    {1, 2},
    {b"x", b"y"},
]


def _stable_id(value: Any) -> str:
    """A test id that is the same in every xdist worker (set order follows hash randomisation)."""
    if isinstance(value, set):
        return "{" + ", ".join(sorted(repr(v) for v in value)) + "}"
    return repr(value)


@pytest.mark.parametrize("value", VALUES, ids=_stable_id)
def test_serialize_matches_boto3(value: Any) -> None:
    assert serialize(value) == TypeSerializer().serialize(value)


@pytest.mark.parametrize("value", VALUES, ids=_stable_id)
def test_deserialize_matches_boto3(value: Any) -> None:
    ours, theirs = deserialize(serialize(value)), TypeDeserializer().deserialize(TypeSerializer().serialize(value))
    normalise = lambda v: bytes(v) if isinstance(v, Binary) else v  # noqa: E731 (boto3 wraps binary)
    if isinstance(theirs, set):
        assert ours == {normalise(v) for v in theirs}
    else:
        assert ours == normalise(theirs)


@pytest.mark.parametrize(
    "value",
    [1.5, Decimal("NaN"), Decimal("Infinity"), set(), {1, "a"}, object()],
    # Stable ids: set order and object addresses differ between xdist workers.
    ids=["float", "nan", "infinity", "empty-set", "mixed-set", "object"],
)
def test_refuses_what_dynamodb_cannot_hold(value: Any) -> None:
    with pytest.raises(TypeError):
        serialize(value)


def test_refuses_unknown_attribute_types() -> None:
    with pytest.raises(TypeError):
        deserialize({"X": "1"})
    with pytest.raises(TypeError):
        deserialize({"S": "a", "N": "1"})
