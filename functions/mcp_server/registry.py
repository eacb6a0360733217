"""Tools with per-tool scopes: the registry an app adds its tools to.

A tool declares the scopes it needs where it is declared (``@tools.tool(scopes=...)``). The
registry is plain Python (no MCP SDK import), so the requirement table can be read cheaply;
the endpoint uses it to hide tools from ``tools/list`` and to answer a ``tools/call`` the
caller may not make with 403 ``insufficient_scope`` (MCP spec 2025-11-25, "Step-Up
Authorization Flow").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


class UnknownScopeError(ValueError):
    """A tool requires a scope the app's catalogue does not define."""


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool: its MCP name, function, required scopes (kit names) and listing metadata.

    ``read_only`` becomes the MCP ``readOnlyHint`` tool annotation.
    """

    name: str
    fn: Callable[..., Any]
    scopes: frozenset[str]
    title: str | None
    description: str | None
    read_only: bool


class ToolRegistry:
    """The tools of one MCP server; ``catalogue`` names every scope a tool may require."""

    def __init__(self, catalogue: Iterable[str], *, source: str = "the scope catalogue") -> None:
        self._catalogue = frozenset(catalogue)
        self._source = source
        self._tools: dict[str, ToolSpec] = {}

    def tool(
        self,
        *,
        scopes: tuple[str, ...] = (),
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        read_only: bool = False,
    ) -> Callable[[_F], _F]:
        """Decorator: register ``fn`` as a tool needing every scope in ``scopes`` (none: any caller).

        Raises ``UnknownScopeError`` naming the tool and the scopes missing from the catalogue,
        at registration (cold start, and synth): a tool guarded by a scope nobody can be
        granted would otherwise be silently unusable. ``ValueError`` for a duplicate name.
        """
        if isinstance(scopes, str):
            raise TypeError("scopes must be a tuple of scope names, e.g. scopes=('notes:read',)")

        def register(fn: _F) -> _F:
            tool_name = name or fn.__name__
            unknown = sorted(set(scopes) - self._catalogue)
            if unknown:
                raise UnknownScopeError(
                    f"tool {tool_name!r} requires scope(s) {unknown} missing from {self._source} "
                    f"(it defines {sorted(self._catalogue)})"
                )
            if tool_name in self._tools:
                raise ValueError(f"duplicate tool {tool_name!r}")
            self._tools[tool_name] = ToolSpec(tool_name, fn, frozenset(scopes), title, description, read_only)
            return fn

        return register

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._tools.values())

    def required_scopes(self, name: str) -> frozenset[str] | None:
        """Scopes a tool needs; None for an unknown tool."""
        spec = self._tools.get(name)
        return None if spec is None else spec.scopes

    def allows(self, name: str, granted: frozenset[str]) -> bool:
        """Whether ``granted`` (effective kit scopes) holds every scope tool ``name`` needs; False if unknown."""
        needed = self.required_scopes(name)
        return needed is not None and needed <= granted
