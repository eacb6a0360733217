"""The demo to-do app: its catalogue and its tools' scopes and behaviour (storage: test_todos_repository)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from kit_app.server import add_tools
from kit_app.tests.memory import InMemoryTodoRepository

from functions.core.platform import kit_app
from functions.mcp_server.api import AppContext, ToolError, ToolRegistry
from functions.mcp_server.app_loader import build_registry, check_app
from functions.mcp_server.principal import Principal, bind, unbind

ALL = frozenset({"todos:read", "todos:write"})


def test_catalogue_tables_and_ceilings() -> None:
    manifest = kit_app.current()
    assert manifest.scope_names == ("todos:read", "todos:write")
    assert manifest.default_ceilings == {"todos:write": ("editors",)}
    assert [(t.name, t.sort_key) for t in manifest.tables] == [("app", "sk")]


def test_every_tool_names_catalogue_scopes() -> None:
    assert check_app(kit_app.current()) == ["whoami", "list_todos", "add_todo", "complete_todo"]
    tools = build_registry(kit_app.current(), AppContext(tables={"app": "t"}))
    assert tools.required_scopes("whoami") == frozenset()
    assert tools.required_scopes("list_todos") == {"todos:read"}
    assert tools.required_scopes("add_todo") == tools.required_scopes("complete_todo") == {"todos:write"}


class Demo:
    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.tools = ToolRegistry(kit_app.current().scope_names)
        add_tools(self.tools, repo)

    def call(self, who: str, name: str, **args: Any) -> Any:
        fn = next(spec.fn for spec in self.tools if spec.name == name)
        token = bind(Principal(f"sub-{who}", who, f"{who}@example.com", "agent", "gw", ALL, f"grant-{who}"))
        try:
            return anyio.run(lambda: fn(**args))
        finally:
            unbind(token)


@pytest.fixture
def demo() -> Demo:
    return Demo(InMemoryTodoRepository())


def test_todos_are_per_user_and_others_ids_look_missing(demo: Demo) -> None:
    added = demo.call("alice", "add_todo", title="  buy milk ")
    assert added["title"] == "buy milk" and added["done"] is False
    assert demo.call("bob", "list_todos") == []
    with pytest.raises(ToolError, match="no to-do with id"):
        demo.call("bob", "complete_todo", id=added["id"])
    with pytest.raises(ToolError, match="no to-do with id"):
        demo.call("alice", "complete_todo", id="0" * 24)
    assert demo.call("alice", "complete_todo", id=added["id"])["done"] is True
    assert [t["title"] for t in demo.call("alice", "list_todos")] == ["buy milk"]


@pytest.mark.parametrize("title", ["   ", "bell\x07"])
def test_bad_titles_are_tool_errors(demo: Demo, title: str) -> None:
    with pytest.raises(ToolError):
        demo.call("alice", "add_todo", title=title)
    assert demo.repo.items == {}


def test_malformed_id_is_a_tool_error(demo: Demo) -> None:
    with pytest.raises(ToolError, match="not a to-do id"):
        demo.call("alice", "complete_todo", id="../../etc")


def test_whoami_is_the_caller(demo: Demo) -> None:
    assert demo.call("carol", "whoami")["scopes"] == sorted(ALL)
