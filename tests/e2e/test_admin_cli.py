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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

from admin.cli import EXIT_NOT_FOUND, EXIT_OK
from tests.e2e.conftest import PASSWORD, RunningStack
from tests.e2e.oauth_harness import Browser, HeadlessAgentUser, MemoryStorage

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
# The bound: an admin's revocation bites at /mcp within 15 s.
BITES_WITHIN_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.25


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class HttpsAgent:
    """An SDK client registered (DCR) as a confidential client with an https redirect URI."""

    def __init__(self, stack: RunningStack, name: str, client_info: OAuthClientInformationFull | None = None) -> None:
        self.stack = stack
        self.redirect_uri = f"https://agent-{uuid.uuid4().hex[:8]}.example.com/callback"
        self.storage = MemoryStorage()
        self.storage.client_info = client_info
        if client_info is not None:
            self.redirect_uri = str(client_info.redirect_uris[0])  # type: ignore[index]
        self.browser = Browser("alice@example.com", PASSWORD)
        self.user = HeadlessAgentUser(self.browser, self.redirect_uri)
        self.provider = OAuthClientProvider(
            server_url=stack.cfg.base_url + "/mcp",
            client_metadata=OAuthClientMetadata(
                client_name=name,
                redirect_uris=[self.redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="client_secret_post",
            ),
            storage=self.storage,
            redirect_handler=self.user.redirect_handler,
            callback_handler=self.user.callback_handler,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(auth=self.provider, timeout=30) as http:
            transport = streamable_http_client(self.stack.cfg.base_url + "/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                yield client

    def whoami_status(self) -> int:
        assert self.storage.tokens is not None
        return httpx.post(
            self.stack.cfg.base_url + "/mcp",
            headers={
                "authorization": f"Bearer {self.storage.tokens.access_token}",
                "accept": "application/json, text/event-stream",
                "content-type": "application/json",
            },
            content=json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
            ),
        ).status_code


def admin(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`mcp-kit-admin --local ...` (the console script's module) against this stack."""
    env = {**os.environ, "KIT_LOCAL_STATE": str(stack.state_file)}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "admin", "--local", *args], env=env, capture_output=True, text=True, timeout=60
    )


def wait_for_status(agent: HttpsAgent, wanted: int, within: float) -> float:
    """Poll /mcp until it answers ``wanted``; returns the seconds it took (AssertionError past ``within``)."""
    start = time.monotonic()
    while True:
        status = agent.whoami_status()
        elapsed = time.monotonic() - start
        if status == wanted:
            return elapsed
        assert elapsed < within, f"/mcp still answers {status} after {elapsed:.1f} s"
        time.sleep(POLL_INTERVAL_SECONDS)  # the poll's pace, not a wait for the outcome


async def test_admin_lists_and_revokes_alices_grant(stack: RunningStack) -> None:
    name = f"Admin E2E agent {uuid.uuid4().hex[:6]}"
    agent = HttpsAgent(stack, name)
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
    again = HttpsAgent(stack, name, client_info=info)
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
    third = HttpsAgent(stack, name, client_info=info)
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
