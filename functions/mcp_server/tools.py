"""Demo tools. Each declares its scopes with ``@scoped_tool``; data is per user.

The caller comes from ``current_principal()`` (the verified token), never from arguments.
Bad arguments raise ``ToolError``, which the SDK answers as a tool result with
``isError: true`` (MCP spec: tool execution errors), not as an HTTP 500. A dependency that
fails (the repositories raise the kit's ``DependencyError``, also for throttling) is not a
tool error: let it propagate, and the endpoint answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any, Final

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from functions.core.scopes import TODOS_READ, TODOS_WRITE, order
from functions.mcp_server.principal import current_principal
from functions.mcp_server.registry import scoped_tool
from functions.mcp_server.todos import MAX_TITLE_LENGTH, TodoNotFound, TodoRepository

_ID_SHAPE: Final = re.compile(r"^[0-9a-f]{16,40}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class _Deps:
    todos: TodoRepository | None = None


def configure(todos: TodoRepository) -> None:
    _Deps.todos = todos


def _todos() -> TodoRepository:
    if _Deps.todos is None:
        raise RuntimeError("tools not configured")
    return _Deps.todos


@scoped_tool(read_only=True, description="Who is signed in, through which client, with which scopes.")
async def whoami() -> dict[str, Any]:
    p = current_principal()
    return {
        "sub": p.sub,
        "username": p.username,
        "email": p.email or None,
        "client_id": p.client_id,
        "scopes": order(p.scopes),
    }


@scoped_tool(scopes=(TODOS_READ,), read_only=True, description="List your to-do items, oldest first.")
async def list_todos() -> list[dict[str, Any]]:
    return [asdict(t) for t in _todos().list(current_principal().sub)]


@scoped_tool(scopes=(TODOS_WRITE,), description="Add an item to your to-do list.")
async def add_todo(
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE_LENGTH, description="What to do")],
) -> dict[str, Any]:
    clean = title.strip()
    if not clean:
        raise ToolError("title must not be blank")
    if _CONTROL.search(clean):
        raise ToolError("title must not contain control characters")
    return asdict(_todos().add(current_principal().sub, clean))


@scoped_tool(scopes=(TODOS_WRITE,), description="Mark one of your to-do items as done.")
async def complete_todo(
    id: Annotated[str, Field(min_length=16, max_length=40, description="The item's id from list_todos")],
) -> dict[str, Any]:
    if not _ID_SHAPE.match(id):
        raise ToolError("id is not a to-do id")
    try:
        return asdict(_todos().complete(current_principal().sub, id))
    except TodoNotFound:
        # Another user's id looks exactly like a missing one: no existence oracle.
        raise ToolError(f"no to-do with id {id}") from None
