"""The official MCP TypeScript SDK client runs the whole OAuth + MCP flow against `make dev`.

tests/e2e/ts/driver.mjs runs the SDK's ``Client`` + ``StreamableHTTPClientTransport`` (default
options: it opens the listen-mode ``GET /mcp`` after connecting) with an in-memory
``OAuthClientProvider``; the SDK does discovery, registration, PKCE, the code exchange, refresh
and re-authorization. This module plays the person: it signs in and consents headlessly
(``Browser``) and writes the redirect back. Every wait on the driver is bounded.

Assertions look at the HTTP exchanges the SDK made and at what the kit stored (client
registrations and grants in the local DynamoDB), not only at what the SDK returned.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from functions.core.clients.records import ClientRecord
from functions.core.clients.store import DynamoClientStore
from functions.core.state.grants import GRANT_PREFIX, DynamoGrantRepository, Grant
from local.config import CLIENTS_TABLE, FAKE_CREDENTIALS, GRANTS_TABLE, REGION
from tests.e2e.conftest import PASSWORD, RunningStack, free_port
from tests.e2e.oauth_harness import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

TS_DIR = Path(__file__).parent / "ts"
DRIVER = TS_DIR / "driver.mjs"
SDK_DIR = TS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk"
# Bounds on the driver: one answer (which may include a sign-in and consent), and its exit.
ANSWER_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
ALL_TOOLS = {"whoami", "list_notes", "add_note", "archive_note"}
READ_TOOLS = {"whoami", "list_notes"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Answer:
    """The driver's answer to one command, with the HTTP exchanges the SDK made for it."""

    ok: bool
    result: Any
    error: dict[str, Any]
    http: list[dict[str, Any]]
    state: dict[str, Any]

    def exchanges(self, method: str, path: str) -> list[dict[str, Any]]:
        return [e for e in self.http if e["method"] == method and e["path"] == path]

    def structured(self) -> Any:
        assert self.ok and not self.result["isError"], f"tool call failed: {self.error or self.result}"
        return self.result["structuredContent"]


class TsAgent:
    """One driver process: an SDK client with its own registration, tokens and browser."""

    def __init__(self, email: str, process: asyncio.subprocess.Process, redirect_uri: str, stderr: Path) -> None:
        self.process = process
        self.redirect_uri = redirect_uri
        self.stderr = stderr
        self.browser = Browser(email, PASSWORD)
        self.authorization_urls: list[str] = []
        self.abandon_next = False

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), ANSWER_TIMEOUT)
        if not raw:
            await asyncio.wait_for(self.process.wait(), EXIT_TIMEOUT)
            raise AssertionError(f"driver exited ({self.process.returncode}):\n{self.stderr.read_text()[-2000:]}")
        message: dict[str, Any] = json.loads(raw)
        return message

    async def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await asyncio.wait_for(self.process.stdin.drain(), ANSWER_TIMEOUT)

    async def run(self, op: str, **params: Any) -> Answer:
        """Send one command; be the person whenever the SDK sends us to an authorization URL."""
        await self._write({"op": op, **params})
        while True:
            message = await self._read()
            if message.get("event") != "authorize":
                error = message.get("error", {})
                return Answer(message["ok"], message.get("result"), error, message["http"], message["state"])
            self.authorization_urls.append(message["url"])
            if self.abandon_next:
                self.abandon_next = False
                await self._write({"abandon": True})
                continue
            query = await self.browser.run(message["url"], self.redirect_uri)
            await self._write({"redirect": self.redirect_uri + "?" + urlencode(query, doseq=True)})

    async def ok(self, op: str, **params: Any) -> Answer:
        answer = await self.run(op, **params)
        assert answer.ok, f"{op} failed: {answer.error}\n{answer.http}"
        return answer

    async def call(self, tool: str, **arguments: Any) -> Answer:
        return await self.run("call", name=tool, arguments=arguments)

    async def close(self) -> None:
        """Ask the driver to close its client, then end it: closed stdin, or a kill after EXIT_TIMEOUT."""
        if self.process.returncode is None:
            assert self.process.stdin is not None
            try:
                await self._write({"op": "close"})
                await self._read()  # its answer (or the failure of a command still waiting for us)
                self.process.stdin.close()
                await asyncio.wait_for(self.process.wait(), EXIT_TIMEOUT)
            except (TimeoutError, AssertionError, BrokenPipeError, ConnectionResetError):
                self.process.kill()
                await self.process.wait()
        await self.browser.aclose()


@asynccontextmanager
async def ts_agent(stack: RunningStack, email: str, tmp_path: Path) -> AsyncIterator[TsAgent]:
    node = shutil.which("node")
    if node is None or not SDK_DIR.is_dir():
        pytest.fail("this test needs Node.js 20+ and `npm ci` in tests/e2e/ts (`make test` does it)")
    redirect_uri = f"http://localhost:{free_port()}/callback"  # unique: no shared registration
    config = {"mcpUrl": stack.cfg.base_url + "/mcp", "redirectUri": redirect_uri, "clientName": "TS SDK e2e agent"}
    stderr = tmp_path / f"driver-{free_port()}.stderr"
    with stderr.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            node,
            str(DRIVER),
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
            limit=1 << 20,
        )
    agent = TsAgent(email, process, redirect_uri, stderr)
    try:
        yield agent
    finally:
        await agent.close()


class KitState:
    """What the kit stored, read from the local stack's DynamoDB (moto)."""

    def __init__(self, stack: RunningStack) -> None:
        self.ddb = boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=stack.cfg.moto_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        self.grant_repo = DynamoGrantRepository(GRANTS_TABLE, self.ddb)
        self.client_store = DynamoClientStore(CLIENTS_TABLE, idle_days=1, client=self.ddb)

    def client(self, client_id: str) -> ClientRecord:
        record = self.client_store.get(client_id, int(time.time()))
        assert record is not None, f"no registration stored for {client_id}"
        return record

    def grants(self, client_id: str) -> list[Grant]:
        ids: list[str] = []
        for page in self.ddb.get_paginator("scan").paginate(
            TableName=GRANTS_TABLE,
            FilterExpression="begins_with(pk, :prefix) AND client_id = :client",
            ExpressionAttributeValues={":prefix": {"S": GRANT_PREFIX}, ":client": {"S": client_id}},
            ProjectionExpression="grant_id",
        ):
            ids += [item["grant_id"]["S"] for item in page["Items"]]
        grants = [self.grant_repo.get(i) for i in ids]
        return sorted((g for g in grants if g is not None), key=lambda g: g.created_at)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _listen_refused(answer: Answer) -> None:
    """The transport's listen-mode GET got 405 at once (MCP transport: no server-initiated stream)."""
    listen = answer.state["listen"]
    assert listen is not None, "GET /mcp (listen mode) was not answered"
    assert (listen["status"], listen["accept"], listen["bearer"]) == (405, "text/event-stream", True)
    assert "POST" in listen["allow"]


def _refused_for_scope(answer: Answer) -> dict[str, Any]:
    """The SDK surfaced a 403 after its own step-up attempt; return the server's first 403."""
    assert not answer.ok
    assert answer.error["code"] == 403, answer.error
    posts = answer.exchanges("POST", "/mcp")
    assert [p["status"] for p in posts] == [403, 403]
    # The SDK first tries a refresh (it cannot widen scope, RFC 6749 section 6), retries, then gives up.
    assert [(t["grant_type"], t["status"]) for t in answer.exchanges("POST", "/token")] == [("refresh_token", 200)]
    challenge = posts[0]["www_authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    scope = challenge.split('scope="')[1].split('"')[0].split()
    assert "notes:write" in scope
    return posts[0]


async def test_alice_discovery_registration_tools_refresh_revocation(stack: RunningStack, tmp_path: Path) -> None:
    base = stack.cfg.base_url
    kit = KitState(stack)
    async with ts_agent(stack, "alice@example.com", tmp_path) as agent:
        connected = await agent.ok("connect")
        client_id = connected.state["client_id"]

        # 401 with the RFC 9728 pointer -> PRM -> RFC 8414 metadata -> DCR -> (person) -> token.
        first = connected.http[0]
        assert (first["method"], first["path"], first["rpc"], first["status"]) == ("POST", "/mcp", "initialize", 401)
        assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in first["www_authenticate"]
        order = [(e["method"], e["path"]) for e in connected.http]
        steps = [
            ("GET", "/.well-known/oauth-protected-resource/mcp"),
            ("GET", "/.well-known/oauth-authorization-server"),
            ("POST", "/register"),
            ("POST", "/token"),
        ]
        assert [order.index(step) for step in steps] == sorted(order.index(step) for step in steps)
        assert [e["status"] for e in connected.exchanges("POST", "/register")] == [201]
        registered = kit.client(client_id)
        assert (registered.redirect_uris, registered.token_endpoint_auth_method) == ((agent.redirect_uri,), "none")
        [exchange] = connected.exchanges("POST", "/token")
        assert (exchange["grant_type"], exchange["status"]) == ("authorization_code", 200)
        assert (exchange["resource"], exchange["scope"]) == (base + "/mcp", "notes:read notes:write")

        # The authorization request the SDK built: PKCE S256, resource, scope, state (RFC 7636, 8707).
        [url] = agent.authorization_urls
        assert url.split("?")[0] == base + "/authorize"
        query = _query(url)
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
        assert query["client_id"] == [client_id]
        assert query["redirect_uri"] == [agent.redirect_uri]
        assert query["resource"] == [base + "/mcp"]
        assert query["scope"] == ["notes:read notes:write"]
        assert query["state"]
        # The person went through the Cognito sign-in (emulated) and the kit's consent page, which
        # named the agent; the response carried iss (RFC 9207).
        assert stack.cfg.cognito_url + "/oauth2/authorize" in agent.browser.visited
        assert base + "/oauth/callback" in agent.browser.visited
        assert len(agent.browser.consent_pages) == 1
        assert "TS SDK e2e agent" in agent.browser.consent_pages[0]
        assert "Read your notes" in agent.browser.consent_pages[0]
        assert [a["iss"] for a in connected.state["authorizations"]] == [base]

        # Connected with the token; the listen-mode GET was answered at once with 405.
        initialized = [e for e in connected.http if e.get("rpc") == "initialize" and e["bearer"]]
        assert [e["status"] for e in initialized] == [200]
        _listen_refused(connected)

        tools = await agent.ok("list_tools")
        assert set(tools.result) == ALL_TOOLS
        me = (await agent.call("whoami")).structured()
        assert (me["email"], me["scopes"]) == ("alice@example.com", ["notes:read", "notes:write"])
        title = f"from the TS SDK {agent.redirect_uri}"
        added = await agent.call("add_note", title=title)
        assert added.structured()["title"] == title
        [grant] = kit.grants(client_id)
        assert (grant.status, grant.email) == ("active", "alice@example.com")
        assert grant.scopes == {"notes:read", "notes:write"}

        # Refresh: the access token stops working; the SDK refreshes on the 401 by itself and the
        # kit rotates the refresh token. Nobody is asked to sign in again.
        await agent.ok("expire_access_token")
        listed = await agent.call("list_notes")
        assert title in [t["title"] for t in listed.structured()["result"]]
        posts = listed.exchanges("POST", "/mcp")
        assert posts[0]["status"] == 401
        assert 'error="invalid_token"' in posts[0]["www_authenticate"]
        assert posts[-1]["status"] == 200
        [refresh] = listed.exchanges("POST", "/token")
        assert (refresh["grant_type"], refresh["status"], refresh["resource"]) == ("refresh_token", 200, base + "/mcp")
        assert listed.state["refresh_token_sha256"] != added.state["refresh_token_sha256"]
        assert listed.state["access_token_sha256"] != added.state["access_token_sha256"]
        assert len(agent.authorization_urls) == 1
        assert [g.status for g in kit.grants(client_id)] == ["active"]

        # Revocation (RFC 7009) at the metadata's revocation_endpoint: /mcp refuses the access
        # token, the SDK's refresh gets invalid_grant and it asks for a new authorization.
        revoked = await agent.ok("revoke")
        assert revoked.result == {"status": 200, "endpoint": base + "/revoke"}
        assert [g.status for g in kit.grants(client_id)] == ["revoked"]
        agent.abandon_next = True
        after = await agent.call("whoami")
        assert not after.ok
        assert "abandoned" in after.error["message"]
        assert after.exchanges("POST", "/mcp")[0]["status"] == 401
        assert [(t["grant_type"], t["status"], t["error"]) for t in after.exchanges("POST", "/token")] == [
            ("refresh_token", 400, "invalid_grant")
        ]
        assert len(agent.authorization_urls) == 2


async def test_alice_registered_read_only_steps_up_to_write(stack: RunningStack, tmp_path: Path) -> None:
    base = stack.cfg.base_url
    kit = KitState(stack)
    async with ts_agent(stack, "alice@example.com", tmp_path) as agent:
        # The app asks the SDK for notes:read only: the SDK registers with that scope.
        authorized = await agent.ok("authorize", scope="notes:read")
        client_id = authorized.state["client_id"]
        [registration] = authorized.exchanges("POST", "/register")
        assert (registration["requested_scope"], registration["status"]) == ("notes:read", 201)
        assert kit.client(client_id).scope == "notes:read"
        assert _query(agent.authorization_urls[0])["scope"] == ["notes:read"]
        assert [t["scope"] for t in authorized.exchanges("POST", "/token")] == ["notes:read"]

        tools = await agent.ok("list_tools")
        assert set(tools.result) == READ_TOOLS
        _listen_refused(tools)
        title = f"stepped up {agent.redirect_uri}"
        refused = await agent.call("add_note", title=title)
        _refused_for_scope(refused)
        assert len(agent.authorization_urls) == 1

        # The app forgets the insufficient tokens; the SDK's 401 path re-authorizes with the
        # challenge's scope, the person consents again, and the same call succeeds.
        await agent.ok("drop_tokens")
        stepped = await agent.call("add_note", title=title)
        assert stepped.structured()["title"] == title
        assert len(agent.authorization_urls) == 2
        _listen_refused(stepped)
        again = _query(agent.authorization_urls[1])
        assert again["client_id"] == [client_id]
        assert "notes:write" in again["scope"][0].split()
        assert stepped.exchanges("POST", "/register") == []
        [exchange] = stepped.exchanges("POST", "/token")
        assert (exchange["grant_type"], exchange["status"], exchange["scope"]) == (
            "authorization_code",
            200,
            "notes:read notes:write",
        )
        assert len(agent.browser.consent_pages) == 2
        assert [a["iss"] for a in stepped.state["authorizations"]] == [base, base]

        # Stored: the registration still says notes:read; the new grant carries notes:write.
        assert kit.client(client_id).scope == "notes:read"
        # (A scan's order is not the order of creation: look for the grant, not at a position.)
        assert {"notes:read", "notes:write"} in [g.scopes for g in kit.grants(client_id) if g.status == "active"]
        listed = await agent.call("list_notes")
        assert title in [t["title"] for t in listed.structured()["result"]]


async def test_bob_without_editors_group_cannot_write(stack: RunningStack, tmp_path: Path) -> None:
    kit = KitState(stack)
    async with ts_agent(stack, "bob@example.com", tmp_path) as agent:
        connected = await agent.ok("connect")
        client_id = connected.state["client_id"]
        # The SDK asked for the whole catalogue; bob approved the consent page, and the group
        # ceiling left notes:read only (reported in the token response, RFC 6749 section 3.3).
        assert _query(agent.authorization_urls[0])["scope"] == ["notes:read notes:write"]
        assert len(agent.browser.consent_pages) == 1
        assert [t["scope"] for t in connected.exchanges("POST", "/token")] == ["notes:read"]
        _listen_refused(connected)

        tools = await agent.ok("list_tools")
        assert set(tools.result) == READ_TOOLS
        assert isinstance((await agent.call("list_notes")).structured()["result"], list)

        title = f"bob tried {agent.redirect_uri}"
        refused = await agent.call("add_note", title=title)
        _refused_for_scope(refused)
        # Nothing was written, and the grant never gained notes:write.
        listed = await agent.call("list_notes")
        assert title not in [t["title"] for t in listed.structured()["result"]]
        assert [g.scopes for g in kit.grants(client_id)] == [{"notes:read"}]
