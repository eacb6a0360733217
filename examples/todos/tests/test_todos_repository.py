"""The demo to-do repository against moto: per-user partitioning and reading every page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kit_app.tests.memory import InMemoryTodoRepository
from kit_app.todos import PAGE_SIZE, DynamoTodoRepository, TodoRepository
from moto import mock_aws


@pytest.fixture(params=["memory", "dynamo"])
def repo(request: pytest.FixtureRequest) -> Iterator[TodoRepository]:
    if request.param == "memory":
        yield InMemoryTodoRepository()
        return
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="app",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoTodoRepository("app", ddb)


def test_list_returns_every_item_past_one_page(repo: TodoRepository) -> None:
    count = 2 * PAGE_SIZE + 37
    added = [repo.add("alice", f"item {i}").id for i in range(count)]
    repo.add("bob", "not alice's")
    listed = repo.list("alice")
    assert [t.id for t in listed] == added  # all of them, oldest first, none of bob's
    assert [t.title for t in repo.list("bob")] == ["not alice's"]


def test_dynamo_list_follows_last_evaluated_key() -> None:
    pages: list[dict[str, Any]] = [
        {"Items": [_item("a")], "LastEvaluatedKey": {"pk": {"S": "USER#alice"}, "sk": {"S": "TODO#a"}}},
        {"Items": [_item("b")], "LastEvaluatedKey": {"pk": {"S": "USER#alice"}, "sk": {"S": "TODO#b"}}},
        {"Items": [_item("c")]},
    ]
    client = _PagedClient(pages)
    assert [t.id for t in DynamoTodoRepository("app", client).list("alice")] == ["a", "b", "c"]
    assert [c.get("ExclusiveStartKey", {}).get("sk") for c in client.calls] == [None, {"S": "TODO#a"}, {"S": "TODO#b"}]


def _item(todo_id: str) -> dict[str, Any]:
    return {"id": {"S": todo_id}, "title": {"S": todo_id}, "done": {"BOOL": False}, "created_at": {"N": "1"}}


class _PagedClient:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]
