"""`mcp-kit-admin --local` against `make dev`, with alice connected through the official MCP SDK client.

The agent is a confidential client with an https redirect URI, so a remembered consent lets a
second authorization skip the consent page (RFC 8252 section 8.6): that is what shows the
revocation forgot her consent, not just her grants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from mcp.shared.auth import OAuthClientInformationFull

from admin.cli import EXIT_NOT_FOUND, EXIT_OK
from tests.e2e.conftest import RunningStack
from tests.e2e.test_sdk_flow import Agent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
# The bound: an admin's revocation bites at /mcp within 15 s.
BITES_WITHIN_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.25


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def https_agent(stack: RunningStack, name: str, client_info: OAuthClientInformationFull | None = None) -> Agent:
    """Alice's SDK client registered (DCR) as a confidential client with an https redirect URI
    (``client_info``: that registration again, for a second authorization)."""
    redirect_uri = f"https://agent-{uuid.uuid4().hex[:8]}.example.com/callback"
    if client_info is not None:
        redirect_uri = str(client_info.redirect_uris[0])  # type: ignore[index]
    return Agent(
        stack,
        "alice@example.com",
        client_name=name,
        redirect_uri=redirect_uri,
        auth_method="client_secret_post",
        client_info=client_info,
    )


def admin(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`mcp-kit-admin --local ...` (the console script's module) against this stack."""
    env = {**os.environ, "KIT_LOCAL_STATE": str(stack.state_file)}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "admin", "--local", *args], env=env, capture_output=True, text=True, timeout=60
    )


def wait_for_status(agent: Agent, wanted: int, within: float) -> float:
    """Poll /mcp until it answers ``wanted``; returns the seconds it took (AssertionError past ``within``)."""
    start = time.monotonic()
    while True:
        status = agent.raw_call("whoami").status_code
        elapsed = time.monotonic() - start
        if status == wanted:
            return elapsed
        assert elapsed < within, f"/mcp still answers {status} after {elapsed:.1f} s"
        time.sleep(POLL_INTERVAL_SECONDS)  # the poll's pace, not a wait for the outcome


async def test_admin_lists_and_revokes_alices_grant(stack: RunningStack) -> None:
    name = f"Admin E2E agent {uuid.uuid4().hex[:6]}"
    agent = https_agent(stack, name)
    async with agent.session() as client:
        await client.call_tool("whoami", {})
    assert len(agent.browser.consent_pages) == 1
    info = agent.storage.client_info
    assert info is not None and info.client_secret

    listed = admin(stack, "grants", "list", "--user", "alice@example.com")
    assert listed.returncode == EXIT_OK, listed.stderr
    assert name in listed.stdout and info.client_id in listed.stdout
    as_json = json.loads(admin(stack, "--json", "grants", "list", "--user", "alice@example.com").stdout)
    [row] = [r for r in as_json if r["client_id"] == info.client_id]
    assert row["agent"] == f"{name} (unverified)" and row["user"] == "alice@example.com"
    assert row["scopes"] == ["notes:read", "notes:write"]

    # Before the revocation the remembered consent covers a new authorization: no consent page.
    again = https_agent(stack, name, client_info=info)
    async with again.session() as client:
        await client.call_tool("whoami", {})
    assert again.browser.consent_pages == []

    revoked = admin(stack, "--json", "grants", "revoke", "--user", "alice@example.com")
    assert revoked.returncode == EXIT_OK, revoked.stderr
    assert set(json.loads(revoked.stdout)["revoked"]) >= {row["grant_id"]}  # stdout is the answer alone
    # One audit event per grant ended, naming the operator as the actor, on stderr.
    events = [json.loads(line)["audit"] for line in revoked.stderr.splitlines() if '"audit"' in line]
    assert {e["grant_id"] for e in events} == set(json.loads(revoked.stdout)["revoked"])
    assert {(e["action"], e["actor"]) for e in events} == {("grant.revoked", "admin")}
    wait_for_status(agent, 401, BITES_WITHIN_SECONDS)
    wait_for_status(again, 401, BITES_WITHIN_SECONDS)
    after = json.loads(admin(stack, "--json", "grants", "list", "--client", info.client_id).stdout)
    assert after == []

    # Her next authorization of the same agent shows the consent page again.
    third = https_agent(stack, name, client_info=info)
    async with third.session() as client:
        await client.call_tool("whoami", {})
    assert len(third.browser.consent_pages) == 1


def test_admin_exit_codes(stack: RunningStack) -> None:
    missing = admin(stack, "grants", "list", "--user", "nobody@example.com")
    assert missing.returncode == EXIT_NOT_FOUND and "nobody@example.com" in missing.stderr
    assert admin(stack, "grants", "list").returncode == 2  # usage: --user or --client is required
    gone = subprocess.run(
        [sys.executable, "-m", "admin", "--local", "grants", "list", "--user", "alice@example.com"],
        env={**os.environ, "KIT_LOCAL_STATE": str(stack.state_file) + ".absent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == EXIT_NOT_FOUND and "make dev is not running" in gone.stderr
