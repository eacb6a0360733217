"""Tools with per-tool scopes: the kit's ``@scoped_tool`` decorator.

A tool declares the scopes it needs where it is declared. The registry is plain Python
(no MCP SDK import), so the requirement table can be read cheaply; the endpoint uses it
to hide tools from ``tools/list`` and to answer a ``tools/call`` the caller may not make
with 403 ``insufficient_scope`` (MCP spec 2025-11-25, "Step-Up Authorization Flow").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from functions.core import scopes as catalogue

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ToolSpec:
    name: str
    fn: Callable[..., Any]
    scopes: frozenset[str]
    title: str | None
    description: str | None
    read_only: bool


class ToolRegistry:
    def __init__(self) -> None:
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
        unknown = [s for s in scopes if catalogue.get_scope(s) is None]
        if unknown:
            # Fail at import (cold start), not at call time: a tool guarded by a scope
            # nobody can be granted would be silently unusable.
            raise ValueError(f"tool requires scopes missing from the catalogue: {unknown}")

        def register(fn: _F) -> _F:
            tool_name = name or fn.__name__
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
        needed = self.required_scopes(name)
        return needed is not None and needed <= granted


REGISTRY = ToolRegistry()
scoped_tool = REGISTRY.tool
