"""The in-memory twin of the demo's ``DynamoTodoRepository``, for the tools' tests.

It lives with the tests, not in the app: only ``tests/`` uses it, and the app folder without
``tests/`` is what ships. test_todos_repository.py runs the same scenarios on both.
"""

from __future__ import annotations

import time

from kit_app.todos import Todo, TodoNotFound, new_todo_id


class InMemoryTodoRepository:
    """Test double with the same per-user partitioning as the DynamoDB implementation."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Todo] = {}

    def list(self, sub: str) -> list[Todo]:
        return [t for (owner, _), t in sorted(self.items.items()) if owner == sub]

    def add(self, sub: str, title: str) -> Todo:
        todo = Todo(id=new_todo_id(), title=title, done=False, created_at=int(time.time()))
        self.items[(sub, todo.id)] = todo
        return todo

    def complete(self, sub: str, todo_id: str) -> Todo:
        todo = self.items.get((sub, todo_id))
        if todo is None:
            raise TodoNotFound(todo_id)
        done = Todo(todo.id, todo.title, True, todo.created_at)
        self.items[(sub, todo_id)] = done
        return done
