"""DynamoDB items declared once: a frozen dataclass per item kind, mapped both ways.

Each stored field of the dataclass becomes one attribute of the item; how is read from
its type annotation, refined by ``stored(...)`` field metadata:

* ``str`` -> S, ``int`` -> N, ``bool`` -> BOOL, ``bytes`` -> B;
* ``tuple[str, ...]`` -> L of S in order, ``frozenset[str]`` -> L of S sorted;
* a ``Literal`` of strings -> S; a stored value outside it reads as ``stored(unknown=...)``
  (the fail-closed state), as does an absent one;
* ``X | None`` -> the attribute is absent when None (DynamoDB has no use for NULL here);
* ``stored(json=True)`` -> S holding compact JSON.

On write, None is never stored and ``stored(omit_empty=True)`` also leaves out an empty
collection, ``""`` and ``0``. On read, an absent attribute takes ``stored(absent=...)``, else
the field's default (the value items written before the attribute existed are read as:
docs/storage-schema.md), and an absent attribute without either is a ``KeyError`` (a
malformed item). The item key (``pk``), its ``kind`` and a ``ttl`` copy of a field are the
``ItemKind``'s; fields that live only in the key are declared ``stored(key_only=True)`` and
passed back on read.
Shapes: DynamoDB API reference, "AttributeValue"; numbers are epoch seconds unless a
field says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from functions.core.platform.attribute_values import serialize

T = TypeVar("T")
_META: Final = "kit.item"
_UNSET: Final = object()  # ``Stored.absent`` not given


@dataclass(frozen=True)
class Stored:
    """How one dataclass field is stored (see the module docstring)."""

    name: str | None = None  # the attribute name; the field's own name when None
    omit_empty: bool = False
    key_only: bool = False  # held in ``pk`` only, never as an attribute
    json: bool = False
    unknown: str | None = None  # the Literal value an unknown or absent stored value reads as
    phase: str | None = None  # the state transition that sets the field (``ItemKind.phase_fields``)
    absent: Any = _UNSET  # what an absent attribute reads as, for a field without a default


def stored(default: Any = dataclasses.MISSING, **how: Any) -> Any:
    """A dataclass ``field`` carrying ``Stored(**how)``; ``default`` as for ``dataclasses.field``."""
    return dataclasses.field(default=default, metadata={_META: Stored(**how)})


@dataclass(frozen=True)
class _Attribute:
    field: str
    name: str
    how: Stored
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    optional: bool
    default: Any  # dataclasses.MISSING: required


class ItemKind(Generic[T]):
    """The item mapping of the dataclass ``cls``: ``pk`` from ``key``, ``kind``, optional ``ttl``.

    ``ttl_of`` names the field copied to the ``ttl`` attribute (epoch seconds), if any.
    Construction fails (``TypeError``) on a field type this mapping cannot store, so a new
    field is checked at import, not at its first write.
    """

    def __init__(self, cls: type[T], *, kind: str, key: Callable[[T], str], ttl_of: str | None = None) -> None:
        self.cls, self.kind, self._key, self._ttl_of = cls, kind, key, ttl_of
        hints = typing.get_type_hints(cls, include_extras=False)
        self.attributes: tuple[_Attribute, ...] = tuple(
            _attribute(f, hints[f.name])
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
        self._by_field = {a.field: a for a in self.attributes}

    def key(self, value: T) -> str:
        """The item's ``pk``."""
        return self._key(value)

    def values(self, value: T, fields: Iterable[str] | None = None, *, omit: bool = True) -> dict[str, Any]:
        """Plain attribute values of ``value`` by attribute name (``fields``: those only).

        ``omit``: leave out what a new item does not store (None, and empty values of
        ``omit_empty`` fields); with False only None is left out (an update that sets them).
        """
        chosen = self.attributes if fields is None else tuple(self._by_field[f] for f in fields)
        out: dict[str, Any] = {}
        for a in chosen:
            raw = getattr(value, a.field)
            if a.how.key_only or raw is None or (omit and a.how.omit_empty and not raw):
                continue
            out[a.name] = a.encode(raw)
        return out

    def plain(self, value: T) -> dict[str, Any]:
        """The whole item of ``value`` as plain values (``pk``, ``kind``, attributes, ``ttl``)."""
        out: dict[str, Any] = {"pk": self._key(value), "kind": self.kind, **self.values(value)}
        if self._ttl_of is not None:
            out["ttl"] = getattr(value, self._ttl_of)
        return out

    def to_item(self, value: T) -> dict[str, Any]:
        """The whole item of ``value`` as DynamoDB ``AttributeValue``s, ready for ``PutItem``."""
        return {name: serialize(v) for name, v in self.plain(value).items()}

    def from_item(self, item: Mapping[str, Any], **key_fields: Any) -> T:
        """The dataclass of a deserialized item (``ddb.from_item``); ``key_fields``: the key-only ones.

        Raises ``KeyError`` when a required attribute is absent.
        """
        kwargs: dict[str, Any] = dict(key_fields)
        for a in self.attributes:
            if a.how.key_only:
                continue
            if a.name in item and item[a.name] is not None:
                kwargs[a.field] = a.decode(item[a.name])
            elif a.how.absent is not _UNSET:
                kwargs[a.field] = a.how.absent
            elif a.how.unknown is not None:
                kwargs[a.field] = a.how.unknown
            elif a.default is not dataclasses.MISSING:
                kwargs[a.field] = a.default
            elif a.optional:
                kwargs[a.field] = None
            else:
                raise KeyError(a.name)
        return self.cls(**kwargs)

    def phase_fields(self, phase: str) -> tuple[str, ...]:
        """The fields declared ``stored(phase=phase)``, in declaration order."""
        return tuple(a.field for a in self.attributes if a.how.phase == phase)

    def attribute_name(self, field: str) -> str:
        """The stored attribute name of ``field``."""
        return self._by_field[field].name


def _attribute(f: dataclasses.Field[Any], hint: Any) -> _Attribute:
    how: Stored = f.metadata.get(_META, Stored())
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{f.name}: one type or None")
        hint, optional = rest[0], True
    encode, decode = _codec(f.name, hint, how)
    default = f.default
    if f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    return _Attribute(f.name, how.name or f.name, how, encode, decode, optional, default)


def _codec(name: str, hint: Any, how: Stored) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if how.json:
        return (lambda v: json.dumps(v, separators=(",", ":"))), (lambda v: json.loads(str(v)))
    if origin is typing.Literal:
        allowed = frozenset(str(a) for a in args)
        fallback = how.unknown
        if fallback not in allowed:
            raise TypeError(f"{name}: a Literal field needs stored(unknown=...) naming one of its values")
        return str, (lambda v: str(v) if str(v) in allowed else fallback)
    if hint is str:
        return str, str
    if hint is bool:
        return bool, bool
    if hint is int:
        return int, int
    if hint is bytes:
        return bytes, bytes
    if origin is tuple and args in ((str, Ellipsis),):
        return list, (lambda v: tuple(str(s) for s in v))
    if origin is frozenset and args == (str,):
        return sorted, (lambda v: frozenset(str(s) for s in v))
    raise TypeError(f"{name}: no DynamoDB mapping for {hint!r}")
