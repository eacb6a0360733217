"""The MCP server object: the SDK's ``MCPServer`` with scope-aware tool listing."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from functions.mcp_server import outage
from functions.mcp_server.principal import current_principal
from functions.mcp_server.registry import ToolRegistry


class ScopedMCPServer(MCPServer):
    """Hides tools the caller's effective scopes do not allow and refuses to run them."""

    def __init__(self, registry: ToolRegistry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._registry = registry
        for spec in registry:
            self.add_tool(
                spec.fn,
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=ToolAnnotations(read_only_hint=spec.read_only) if spec.read_only else None,
            )

    async def list_tools(self) -> Any:
        """``tools/list``: only the tools the current principal's effective scopes allow."""
        granted = current_principal().scopes
        return [t for t in await super().list_tools() if self._registry.allows(t.name, granted)]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """``tools/call``: ``ToolError`` when the principal lacks a scope the tool needs.

        A ``DependencyError`` behind a tool's failure is reported to :mod:`outage`, so the request is
        answered 503 with ``Retry-After`` instead of a tool error.
        """
        # Defence in depth: the HTTP layer already answered 403 for this case.
        needed = self._registry.required_scopes(name)
        if needed is not None and not needed <= current_principal().scopes:
            raise ToolError(f"insufficient scope for tool {name}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            # A dependency outage is not the tool's answer: the endpoint makes it a 503.
            cause = outage.dependency_cause(exc)
            if cause is not None:
                outage.report(cause)
            raise


def build_server(registry: ToolRegistry, *, name: str) -> ScopedMCPServer:
    """The MCP server named ``name`` (``serverInfo.name``) serving the tools of ``registry``."""
    return ScopedMCPServer(registry, name=name, version="0.1.0")
