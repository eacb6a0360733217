"""The MCP server object: the SDK's ``MCPServer`` with scope-aware tool listing and audited calls."""

from __future__ import annotations

import time
from typing import Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from functions.core.platform.audit import Outcome, audit, party_fields
from functions.core.platform.metrics import UNKNOWN_TOOL, UNKNOWN_TOOL_REASON, count
from functions.mcp_server import outage
from functions.mcp_server.principal import Principal, current_principal
from functions.mcp_server.registry import ToolRegistry

# A tool name the registry does not know is caller-chosen text: bounded in the audit event,
# and one value for the metric dimension (UNKNOWN_TOOL: each distinct value is a billed metric).
MAX_LOGGED_NAME: Final = 64


def tool_called(
    principal: Principal, name: str, *, known: bool, outcome: Outcome, reason: str | None, duration_ms: float | None
) -> None:
    """One ``tool.called`` audit event (INFO) and one ``ToolCalls`` count for a ``tools/call``.

    A registered tool's call is counted by the stack's metric filter on the audit line
    (``metrics.LOG_METRICS``): nothing else is written. An unknown tool's call (``known``
    False; its ``reason`` is always ``unknown_tool``, which that filter leaves out) is
    counted by one EMF line with the bounded dimension value ``UNKNOWN_TOOL``.
    ``duration_ms``: wall time of the call in milliseconds (monotonic clock), None when it
    never ran.
    """
    audit(
        "tool.called",
        actor="client",
        outcome=outcome,
        reason=reason if known else UNKNOWN_TOOL_REASON,
        tool=name if known else name[:MAX_LOGGED_NAME],
        duration_ms=duration_ms,
        scopes=principal.scopes,
        **party_fields(principal),
    )
    if not known:
        count("ToolCalls", tool=UNKNOWN_TOOL, outcome=outcome)


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
        """``tools/call`` for the current principal; every call leaves one ``tool.called`` audit event.

        Raises ``ToolError`` (the SDK answers it as a result with ``isError``) when the principal
        lacks a scope the tool needs, the tool is not in the kit's registry or it failed. A
        ``DependencyError`` behind a tool's failure is reported to :mod:`outage`, so the request
        is answered 503 with ``Retry-After`` instead of a tool error.
        """
        principal = current_principal()
        needed = self._registry.required_scopes(name)
        if needed is None:
            # Fail closed: only the registry says which scopes a tool needs. A tool added to the
            # SDK server another way (``server.tool()`` in an app's ``extend`` hook) is hidden from
            # tools/list and must not run either (MCP tools spec, "Security Considerations":
            # servers MUST implement proper access controls).
            tool_called(principal, name, known=False, outcome="error", reason=None, duration_ms=None)
            raise ToolError(f"Unknown tool: {name}")
        if not needed <= principal.scopes:
            # Defence in depth: the HTTP layer already answered 403 for this case.
            tool_called(principal, name, known=True, outcome="denied", reason="insufficient_scope", duration_ms=None)
            raise ToolError(f"insufficient scope for tool {name}")
        started = time.monotonic()
        outcome: Outcome = "error"
        reason: str | None = "tool_error"
        try:
            result = await super().call_tool(name, arguments, context)
            outcome, reason = ("error", "tool_error") if getattr(result, "is_error", False) else ("success", None)
            return result
        except ToolError as exc:
            # A dependency outage is not the tool's answer: the endpoint makes it a 503.
            cause = outage.dependency_cause(exc)
            if cause is not None:
                reason = "dependency"
                outage.report(cause)
            raise
        finally:
            elapsed = (time.monotonic() - started) * 1000
            tool_called(principal, name, known=True, outcome=outcome, reason=reason, duration_ms=elapsed)


def build_server(registry: ToolRegistry, *, name: str) -> ScopedMCPServer:
    """The MCP server named ``name`` (``serverInfo.name``) serving the tools of ``registry``."""
    return ScopedMCPServer(registry, name=name, version="0.1.0")
