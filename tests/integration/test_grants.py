"""Client lifecycle against moto: a deleted or idle-expired registered client's grants stop
authorizing at /mcp (RFC 7592 section 2.3), and its code redemption and refresh fail.

The real registration and MCP Lambda handlers share the moto stack; GRANT_CACHE_SECONDS is 0
here (tests/integration/conftest.py), so the refusal is visible on the next request.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from typing import Any

import boto3
import pytest

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.resolver import KitClientResolver
from functions.core.clients.store import DynamoClientStore
from functions.core.state.grants import DynamoGrantRepository
from local.config import CLIENTS_TABLE, GRANTS_TABLE
from tests.helpers import FakeContext, grant, http_api_event, rpc
from tests.integration.conftest import MotoStack
from tests.integration.test_mcp_handler import ACCEPT, moto_token
from tests.integration.test_registration import PUBLIC, call

CONFIDENTIAL: dict[str, Any] = {**PUBLIC, "token_endpoint_auth_method": "client_secret_basic"}


@pytest.fixture(scope="module")
def register(moto_stack: MotoStack) -> Any:
    module = importlib.import_module("functions.registration.handler")
    return importlib.reload(module).handler


@pytest.fixture(scope="module")
def mcp(moto_stack: MotoStack) -> Any:
    module = importlib.import_module("functions.mcp_server.handler")
    return importlib.reload(module).handler


def connect(stack: MotoStack, client_id: str) -> dict[str, str]:
    """A grant of this client for a fresh user, and that user's bearer headers."""
    who = f"user-{uuid.uuid4().hex[:8]}"
    record = grant(f"origin-{who}", f"sub-{who}", ("notes:read",), client_id=client_id)
    DynamoGrantRepository(GRANTS_TABLE).create(record)
    return {**ACCEPT, "authorization": "Bearer " + moto_token(stack, who, ("notes:read",))}


def list_tools(mcp: Any, headers: dict[str, str]) -> int:
    result = mcp(http_api_event("POST", "/mcp", headers=headers, body=rpc("tools/list")), FakeContext())
    return int(result["statusCode"])


def resolver() -> KitClientResolver:
    return KitClientResolver(DynamoClientStore(CLIENTS_TABLE, idle_days=30), CimdResolver())


def test_deleting_a_client_stops_its_access_tokens_at_mcp(moto_stack: MotoStack, register: Any, mcp: Any) -> None:
    status, _, client = call(register, "POST", "/register", body={**CONFIDENTIAL, "client_name": "to delete"})
    assert status == 201
    cid = client["client_id"]
    headers = connect(moto_stack, cid)
    assert list_tools(mcp, headers) == 200
    assert resolver().resolve(cid) is not None
    assert call(register, "DELETE", f"/register/{cid}", token=client["registration_access_token"])[0] == 204
    assert list_tools(mcp, headers) == 401
    # ...and /token can neither redeem its codes nor refresh its grants: the client is unknown.
    assert resolver().resolve(cid) is None


def test_an_idle_expired_client_stops_its_access_tokens(moto_stack: MotoStack, register: Any, mcp: Any) -> None:
    status, _, client = call(register, "POST", "/register", body={**PUBLIC, "client_name": f"idle {uuid.uuid4()}"})
    assert status == 201
    cid = client["client_id"]
    headers = connect(moto_stack, cid)
    assert list_tools(mcp, headers) == 200
    # Past its idle expiry; DynamoDB's TTL deletion (cleanup only) has not run yet.
    boto3.client("dynamodb").update_item(
        TableName=CLIENTS_TABLE,
        Key={"pk": {"S": CLIENT_PREFIX + cid}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert list_tools(mcp, headers) == 401
    assert resolver().resolve(cid) is None


def test_grants_of_metadata_document_clients_need_no_registration(moto_stack: MotoStack, mcp: Any) -> None:
    assert list_tools(mcp, connect(moto_stack, "https://agent.example.com/client.json")) == 200


def test_identical_registrations_keep_every_token_readable(moto_stack: MotoStack, register: Any) -> None:
    meta = {**PUBLIC, "client_name": f"shared {uuid.uuid4()}"}
    replies = [call(register, "POST", "/register", body=meta)[2] for _ in range(3)]
    assert len({r["client_id"] for r in replies}) == 1
    for reply in replies:
        status, _, body = call(
            register, "GET", f"/register/{reply['client_id']}", token=reply["registration_access_token"]
        )
        assert status == 200 and body["registration_access_token"] == reply["registration_access_token"]
    stored = boto3.client("dynamodb").get_item(
        TableName=CLIENTS_TABLE, Key={"pk": {"S": CLIENT_PREFIX + replies[0]["client_id"]}}, ConsistentRead=True
    )["Item"]
    assert len(stored["registration_access_token_hashes"]["L"]) == 3
    assert not any(r["registration_access_token"] in json.dumps(stored) for r in replies)


def test_the_mcp_functions_client_check_reads_the_registration_and_fails_closed(
    moto_stack: MotoStack, register: Any
) -> None:
    from functions.core.clients.ids import DynamoRegisteredClients
    from functions.core.platform.errors import DependencyError

    status, _, client = call(register, "POST", "/register", body={**PUBLIC, "client_name": f"check {uuid.uuid4()}"})
    assert status == 201
    now = int(time.time())
    clients = DynamoRegisteredClients(CLIENTS_TABLE)
    expires_at = clients.get(client["client_id"], now)
    # The same answer the registration store gives: registered until its idle expiry (ttl).
    record = DynamoClientStore(CLIENTS_TABLE, idle_days=30).get(client["client_id"], now)
    assert record is not None and expires_at == record.expires_at
    assert clients.get(client["client_id"], record.expires_at) is None
    assert clients.get("A" * 22, now) is None
    # An item whose ttl is missing or not a number counts as expired: a 401 at /mcp, never a 500.
    for ttl in ({"NULL": True}, {"S": "soon"}, None):
        item = {"pk": {"S": CLIENT_PREFIX + "B" * 22}, "kind": {"S": "client"}} | ({"ttl": ttl} if ttl else {})
        boto3.client("dynamodb").put_item(TableName=CLIENTS_TABLE, Item=item)
        assert clients.get("B" * 22, now) is None
    broken = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    with pytest.raises(DependencyError):
        DynamoRegisteredClients(CLIENTS_TABLE, broken).get(client["client_id"], now)
