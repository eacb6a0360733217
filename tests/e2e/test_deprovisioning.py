"""Deprovisioning bites at /mcp: a change made with boto3 against `make dev`'s moto server
(AdminDisableUser, AdminDeleteUser, AdminRemoveUserFromGroup) takes effect within 15 s.

The stack runs with the `make dev` defaults that bound it (GRANT_CACHE_SECONDS=10, the
poller every DEPROVISION_POLL_SECONDS=3), not the zero cache of the other e2e tests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from local.config import FAKE_CREDENTIALS, REGION, demo_users
from tests.e2e.conftest import PASSWORD, RunningStack, run_stack
from tests.e2e.test_sdk_flow import Agent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
BITES_WITHIN_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.25
EDITORS = next(g for user in demo_users() for g in user.groups)  # the group notes:write needs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def dev_stack(tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    yield from run_stack(tls_files, GRANT_CACHE_SECONDS="10", DEPROVISION_POLL_SECONDS="3")


class Pool:
    """The stack's user pool, through boto3 against its moto server (as an operator's script would)."""

    def __init__(self, stack: RunningStack) -> None:
        self.idp = boto3.client(
            "cognito-idp",
            region_name=REGION,
            endpoint_url=stack.cfg.moto_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        self.pool_id = self.idp.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]

    def new_editor(self) -> str:
        email = f"carol-{uuid.uuid4().hex[:8]}@example.com"
        self.idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        self.idp.admin_set_user_password(UserPoolId=self.pool_id, Username=email, Password=PASSWORD, Permanent=True)
        self.idp.admin_add_user_to_group(UserPoolId=self.pool_id, Username=email, GroupName=EDITORS)
        return email


async def connected(stack: RunningStack, email: str) -> Agent:
    agent = Agent(stack, email)
    async with agent.session() as client:
        me = (await client.call_tool("whoami", {})).structured_content
    assert me["scopes"] == ["notes:read", "notes:write"]
    return agent


def wait_until(agent: Agent, tool: str, wanted: int) -> float:
    """Poll a tools/call until /mcp answers ``wanted``; seconds taken (AssertionError past the bound)."""
    start = time.monotonic()
    while True:
        response: httpx.Response = agent.raw_call(tool, {"title": "deprovisioning"} if tool == "add_note" else {})
        elapsed = time.monotonic() - start
        if response.status_code == wanted:
            return elapsed
        assert elapsed < BITES_WITHIN_SECONDS, f"{tool} still answers {response.status_code} after {elapsed:.1f} s"
        time.sleep(POLL_INTERVAL_SECONDS)  # the poll's pace, not a wait for the outcome


@pytest.mark.parametrize("call", ["admin_disable_user", "admin_delete_user"])
async def test_disabling_or_deleting_a_user_ends_their_access(dev_stack: RunningStack, call: str) -> None:
    pool = Pool(dev_stack)
    email = pool.new_editor()
    agent = await connected(dev_stack, email)
    assert agent.raw_call("whoami").status_code == 200

    getattr(pool.idp, call)(UserPoolId=pool.pool_id, Username=email)

    wait_until(agent, "whoami", 401)


async def test_leaving_a_group_narrows_the_grant(dev_stack: RunningStack) -> None:
    pool = Pool(dev_stack)
    email = pool.new_editor()
    agent = await connected(dev_stack, email)
    assert agent.raw_call("add_note").status_code == 200

    pool.idp.admin_remove_user_from_group(UserPoolId=pool.pool_id, Username=email, GroupName=EDITORS)

    wait_until(agent, "add_note", 403)
    denied = agent.raw_call("add_note", {"title": "x"})
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    # Narrowed, not revoked: what the remaining groups allow still works with the same token.
    assert agent.raw_call("whoami").status_code == 200
