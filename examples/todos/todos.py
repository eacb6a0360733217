"""Data access for the demo to-do tools, partitioned by the caller's ``sub``.

Every key starts with ``USER#<sub>`` taken from the verified token, never from tool
arguments, so one user can neither read nor change another user's items.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

from functions.mcp_server.api import ConditionFailed, DynamoTable, dependency_call, from_item, to_item

MAX_TITLE_LENGTH: Final = 200
# Items per Query page. A user's list is read to the end, page after page (LastEvaluatedKey):
# stopping at one page would silently hide the rest of the list.
PAGE_SIZE: Final = 100


@dataclass(frozen=True)
class Todo:
    id: str
    title: str
    done: bool
    created_at: int


class TodoNotFound(LookupError):
    pass


class TodoRepository(Protocol):
    """Per-user to-do storage. Every method raises ``DependencyError`` when storage fails
    (refused, throttled, unreachable): the endpoint answers that with 503 + ``Retry-After``."""

    def list(self, sub: str) -> list[Todo]: ...

    def add(self, sub: str, title: str) -> Todo: ...

    def complete(self, sub: str, todo_id: str) -> Todo: ...


def new_todo_id() -> str:
    # Time-ordered so Query returns creation order; random suffix avoids collisions.
    return f"{time.time_ns():016x}{secrets.token_hex(4)}"


class DynamoTodoRepository(DynamoTable):
    @staticmethod
    def _pk(sub: str) -> str:
        return f"USER#{sub}"

    def list(self, sub: str) -> list[Todo]:
        """All of ``sub``'s items, oldest first (ids are time-ordered), every page of the Query."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :todo)",
            "ExpressionAttributeValues": {":pk": {"S": self._pk(sub)}, ":todo": {"S": "TODO#"}},
            "Limit": PAGE_SIZE,
        }
        todos: list[Todo] = []
        while True:
            with dependency_call("list todos"):
                resp = self._ddb.query(**query)
            todos.extend(_todo(from_item(i)) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return todos
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def add(self, sub: str, title: str) -> Todo:
        todo = Todo(id=new_todo_id(), title=title, done=False, created_at=int(time.time()))
        with dependency_call("add todo"):
            self._ddb.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": self._pk(sub),
                        "sk": f"TODO#{todo.id}",
                        "id": todo.id,
                        "title": todo.title,
                        "done": False,
                        "created_at": todo.created_at,
                    }
                ),
                ConditionExpression="attribute_not_exists(sk)",
            )
        return todo

    def complete(self, sub: str, todo_id: str) -> Todo:
        try:
            with dependency_call("complete todo"):
                resp = self._ddb.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": self._pk(sub)}, "sk": {"S": f"TODO#{todo_id}"}},
                    UpdateExpression="SET done = :t",
                    ConditionExpression="attribute_exists(sk)",
                    ExpressionAttributeValues={":t": {"BOOL": True}},
                    ReturnValues="ALL_NEW",
                )
        except ConditionFailed:
            raise TodoNotFound(todo_id) from None
        return _todo(from_item(resp["Attributes"]))


def _todo(item: dict[str, Any]) -> Todo:
    return Todo(
        id=str(item["id"]), title=str(item["title"]), done=bool(item["done"]), created_at=int(item["created_at"])
    )
