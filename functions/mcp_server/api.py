"""What an app's ``server.py`` may import from the kit: its stable surface.

An app folder's ``server.py`` defines ``register(tools: ToolRegistry, ctx: AppContext) ->
None`` and, for resources and prompts, optionally ``extend(server: MCPServer, ctx:
AppContext) -> None``. Both run once per container (Lambda init; at synth, ``register``
only, with placeholder table names, to check every tool's scopes against the catalogue).
Dependencies come from ``ctx`` (build repositories there and close over them), not from a
global. The names below keep their meaning within a major version of the kit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp.server.mcpserver.exceptions import ToolError

from functions.core.platform.ddb import ConditionFailed, DynamoTable, dependency_call, from_item, to_item
from functions.core.platform.errors import DependencyError
from functions.mcp_server.principal import Principal, current_principal
from functions.mcp_server.registry import ToolRegistry, UnknownScopeError

__all__ = [
    "AppContext",
    "ConditionFailed",
    "DependencyError",
    "DynamoTable",
    "Principal",
    "ToolError",
    "ToolRegistry",
    "UnknownScopeError",
    "current_principal",
    "dependency_call",
    "from_item",
    "to_item",
]


@dataclass(frozen=True)
class AppContext:
    """What the kit hands an app at start-up.

    ``tables`` maps each table name of the app's manifest to its DynamoDB table name (in AWS
    the stack's physical name, locally the seeded one, at synth a placeholder).
    """

    tables: Mapping[str, str] = field(default_factory=dict)
    resource_name: str = "MCP server"

    def table(self, name: str) -> str:
        """The DynamoDB table name of the manifest's table ``name``; ``KeyError`` if undeclared."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(
                f"table {name!r} is not declared in the app's app.json; declared: {sorted(self.tables)}"
            ) from None
