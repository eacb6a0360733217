"""The demo MCP server: a per-user to-do list (the kit's default ``kit:app``).

``register`` adds each tool with the scopes it needs (from ``app.json``). The caller comes
from ``current_principal()`` (the verified token), never from arguments. Bad arguments raise
``ToolError``, which the SDK answers as a tool result with ``isError: true`` (MCP spec: tool
execution errors), not as an HTTP 500. A dependency that fails (the repositories raise the
kit's ``DependencyError``, also for throttling) is not a tool error: let it propagate, and
the endpoint answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any, Final

from pydantic import Field

from functions.mcp_server.api import AppContext, ToolError, ToolRegistry, current_principal

from .todos import MAX_TITLE_LENGTH, DynamoTodoRepository, TodoNotFound, TodoRepository

READ: Final = "todos:read"
WRITE: Final = "todos:write"
_ID_SHAPE: Final = re.compile(r"^[0-9a-f]{16,40}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def register(tools: ToolRegistry, ctx: AppContext) -> None:
    """The kit's entry point: the to-dos live in the manifest's table ``app``."""
    add_tools(tools, DynamoTodoRepository(ctx.table("app")))


def add_tools(tools: ToolRegistry, todos: TodoRepository) -> None:
    """Register the demo tools over ``todos`` (tests pass an in-memory repository)."""

    @tools.tool(read_only=True, description="Who is signed in, through which client, with which scopes.")
    async def whoami() -> dict[str, Any]:
        p = current_principal()
        return {
            "sub": p.sub,
            "username": p.username,
            "email": p.email or None,
            "client_id": p.client_id,
            "scopes": sorted(p.scopes),
        }

    @tools.tool(scopes=(READ,), read_only=True, description="List your to-do items, oldest first.")
    async def list_todos() -> list[dict[str, Any]]:
        return [asdict(t) for t in todos.list(current_principal().sub)]

    @tools.tool(scopes=(WRITE,), description="Add an item to your to-do list.")
    async def add_todo(
        title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE_LENGTH, description="What to do")],
    ) -> dict[str, Any]:
        clean = title.strip()
        if not clean:
            raise ToolError("title must not be blank")
        if _CONTROL.search(clean):
            raise ToolError("title must not contain control characters")
        return asdict(todos.add(current_principal().sub, clean))

    @tools.tool(scopes=(WRITE,), description="Mark one of your to-do items as done.")
    async def complete_todo(
        id: Annotated[str, Field(min_length=16, max_length=40, description="The item's id from list_todos")],
    ) -> dict[str, Any]:
        if not _ID_SHAPE.match(id):
            raise ToolError("id is not a to-do id")
        try:
            return asdict(todos.complete(current_principal().sub, id))
        except TodoNotFound:
            # Another user's id looks exactly like a missing one: no existence oracle.
            raise ToolError(f"no to-do with id {id}") from None
