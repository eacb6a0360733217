"""DynamoDB attribute values (the low-level API's typed JSON) to and from Python values.

The same mapping as ``boto3.dynamodb.types.TypeSerializer`` / ``TypeDeserializer`` for the
values the kit stores, without importing boto3 (which loads s3transfer and the resource
layer: about 100 ms of a cold start). Numbers come back as ``Decimal`` and binary as
``bytes``; floats are refused, as boto3 refuses them (inexact). Shapes: DynamoDB API
reference, "AttributeValue".
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from typing import Any


def serialize(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB ``AttributeValue``; ``TypeError`` for what it cannot hold.

    ``None`` -> NULL, ``bool`` -> BOOL, ``int``/``Decimal`` -> N, ``str`` -> S, ``bytes`` -> B,
    non-empty sets of one of those -> SS/NS/BS, lists/tuples -> L, mappings -> M.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        return _set(value)
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    raise TypeError(f"unsupported DynamoDB value type: {type(value).__name__}")


def deserialize(attribute: Mapping[str, Any]) -> Any:
    """One DynamoDB ``AttributeValue`` as a Python value (N -> ``Decimal``, B -> ``bytes``)."""
    if len(attribute) != 1:
        raise TypeError("an AttributeValue has exactly one type key")
    ((kind, raw),) = attribute.items()
    if kind == "S":
        return str(raw)
    if kind == "N":
        return Decimal(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(raw)
    if kind == "SS":
        return {str(v) for v in raw}
    if kind == "NS":
        return {Decimal(v) for v in raw}
    if kind == "BS":
        return {bytes(v) for v in raw}
    if kind == "L":
        return [deserialize(v) for v in raw]
    if kind == "M":
        return {k: deserialize(v) for k, v in raw.items()}
    raise TypeError(f"unsupported DynamoDB attribute type: {kind}")


def _number(value: int | Decimal) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        raise TypeError("Infinity and NaN are not DynamoDB numbers")
    return str(value)


def _set(value: Set[Any]) -> dict[str, Any]:
    items = list(value)
    if items and all(isinstance(v, str) for v in items):
        return {"SS": items}
    if items and all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in items):
        return {"NS": [_number(v) for v in items]}
    if items and all(isinstance(v, bytes | bytearray) for v in items):
        return {"BS": [bytes(v) for v in items]}
    raise TypeError("a DynamoDB set holds one or more strings, numbers or binaries, all of one kind")
