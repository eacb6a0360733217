"""The connected-agents page, driven in a real headless browser against `make dev`.

Alice connects an agent through the real flow (the official Python SDK client), then opens
``/account/agents`` in Chromium (tests/e2e/ts/account_page.mjs, playwright-core with the
system's browser), signs in at the Cognito emulator's login page, sees the agent and revokes
it; her agent's access token then fails at /mcp within the grant cache bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, RunningStack
from tests.e2e.test_sdk_flow import Agent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

TS_DIR = Path(__file__).parent / "ts"
DRIVER = TS_DIR / "account_page.mjs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
DRIVER_TIMEOUT = 90.0
# The e2e stack runs with GRANT_CACHE_SECONDS=0; the bound allows for the request itself.
REVOCATION_BOUND = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _drive_browser(base_url: str, agent_name: str) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: `make test` installs Debian's chromium (apt-get install chromium)")
    if not (TS_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is not installed: run `make test` (npm ci in tests/e2e/ts)")
    node = shutil.which("node")
    assert node is not None, "node is required for the browser driver"
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        base_url,
        "alice@example.com",
        PASSWORD,
        agent_name,
        cwd=TS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), DRIVER_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the browser driver did not finish") from None
    assert process.returncode == 0, stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    return result


def _mcp_status(base_url: str, access_token: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "authorization": "Bearer " + access_token,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2025-06-18",
    }
    return httpx.post(base_url + "/mcp", json=body, headers=headers, timeout=10).status_code


async def test_alice_lists_and_revokes_her_agent_in_a_real_browser(stack: RunningStack) -> None:
    base = stack.cfg.base_url
    name = f"Browser agent {uuid.uuid4().hex[:8]}"
    agent = Agent(stack, "alice@example.com")
    agent.provider.context.client_metadata.client_name = name
    async with agent.session() as client:
        assert (await client.list_tools()).tools
    assert agent.storage.tokens is not None
    access_token = agent.storage.tokens.access_token
    assert _mcp_status(base, access_token) == 200

    shown = await _drive_browser(base, name)

    assert shown["loginUrl"] == stack.cfg.cognito_url + "/oauth2/authorize"
    assert "Apps connected to your" in shown["heading"]
    assert "alice@example.com" in shown["signedInAs"]
    assert shown["matching"] == 1, shown["agentsBefore"]
    (listed,) = [text for text in shown["agentsBefore"] if name in text]
    assert "unverified" in listed and "App id" in listed
    assert "notes:read" in listed and "Granted " in listed and "Expires " in listed
    assert shown["overflowBefore"] is False  # the 390 px phone layout needs no sideways scrolling
    session = next(c for c in shown["cookies"] if c["name"] == "mcpkit_account")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert "Access revoked" in shown["notice"]
    assert not any(name in text for text in shown["agentsAfter"])

    # Poll /mcp with a deadline (no sleeps): the revoked grant's token must stop working.
    deadline = time.monotonic() + REVOCATION_BOUND
    status = _mcp_status(base, access_token)
    while status != 401 and time.monotonic() < deadline:
        status = _mcp_status(base, access_token)
    assert status == 401
