"""The audit trail of a whole flow through the real Lambda handlers against moto: one event per
security-relevant action, with the user, and not one token, code or secret in anything written."""

from __future__ import annotations

import json
from typing import Any

from functions.core.platform.routes import ROUTES
from local.gateway import build_event
from tests.facade_fakes import PUBLIC_REDIRECT, VERIFIER
from tests.helpers import FakeContext, modern_meta, rpc
from tests.integration.facade_flow import PASSWORD, Facade, consent, exchange, invoke, sign_in, token
from tests.observability_capture import Captured
from tests.unit.test_audit import SCHEMA_FIELDS


def call_tool(facade: Facade, access_token: str, name: str) -> dict[str, Any]:
    route = next(r for r in ROUTES if r.method == "POST" and r.path == "/mcp")
    headers = {
        "authorization": "Bearer " + access_token,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    body = rpc("tools/call", {"name": name, "arguments": {}, "_meta": modern_meta()})
    event = build_event(
        method="POST",
        path="/mcp",
        raw_query="",
        headers=[("host", "localhost:8000"), *headers.items()],
        body=json.dumps(body).encode(),
        route=route,
    )
    result: dict[str, Any] = facade.mcp(event, FakeContext())
    return result


def test_a_whole_flow_leaves_one_event_per_action_and_no_secret(facade: Facade, seen: Captured) -> None:
    secrets: list[str] = [VERIFIER, PASSWORD, facade.stack.seeded.gateway_client_secret]
    cookie, page = sign_in(facade, "alice@example.com")
    secrets += [cookie.split("=", 1)[1], page["body"].split('name=csrf value="')[1].split('"')[0]]
    code = consent(facade, cookie, page)["code"]
    status, first = exchange(facade, code)
    assert status == 200
    assert call_tool(facade, first["access_token"], "whoami")["statusCode"] == 200
    status, second = token(facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200
    status, _ = token(facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, strict=True)
    assert status == 400  # reuse: the grant is revoked
    secrets += [code, first["access_token"], first["refresh_token"], second["access_token"], second["refresh_token"]]

    # A second grant: its code replayed with another verifier, then /revoke of a third.
    cookie, page = sign_in(facade, "alice@example.com", state="two")
    code2 = consent(facade, cookie, page)["code"]
    status, third = exchange(facade, code2)
    assert status == 200
    replay = {"grant_type": "authorization_code", "code": code2, "redirect_uri": PUBLIC_REDIRECT}
    assert token(facade, {**replay, "code_verifier": "w" * 43})[0] == 400
    cookie, page = sign_in(facade, "alice@example.com", state="three")
    status, fourth = exchange(facade, consent(facade, cookie, page)["code"])
    revoked = invoke(
        facade.token, "POST", "/revoke", form={"token": fourth["refresh_token"], "client_id": "public-agent"}
    )
    assert revoked["statusCode"] == 200
    cookie, page = sign_in(facade, "bob@example.com", state="deny", client_id="other-agent")
    consent(facade, cookie, page, decision="deny")
    secrets += [code2, third["access_token"], third["refresh_token"], fourth["access_token"], fourth["refresh_token"]]

    events = seen.events()
    actions = [e["action"] for e in events]
    for action in (
        "authorization.granted",
        "token.issued",
        "tool.called",
        "token.refreshed",
        "refresh.reuse_detected",
        "grant.revoked",
        "code.replay_detected",
        "token.revoked",
        "authorization.denied",
    ):
        assert action in actions, action
    assert all(set(e) <= SCHEMA_FIELDS for e in events)
    [granted, *_] = [e for e in events if e["action"] == "authorization.granted"]
    assert granted["username"] and granted["sub"] and granted["client_id"] == "public-agent" and granted["grant_id"]
    [tool] = [e for e in events if e["action"] == "tool.called"]
    assert (tool["tool"], tool["outcome"], tool["grant_id"]) == ("whoami", "success", granted["grant_id"])
    assert tool["sub"] == granted["sub"] and tool["username"] == granted["username"]
    assert [e["reason"] for e in events if e["action"] == "grant.revoked"] == [
        "refresh_reuse",
        "code_replay",
        "revoked_by_client",
    ]
    denied = next(e for e in events if e["action"] == "authorization.denied")
    assert (denied["reason"], denied["actor"], denied["client_id"]) == ("user_denied", "user", "other-agent")
    # The agent's self-declared name, as its grant (or the request) recorded it, on every event of it.
    named = ("authorization.granted", "authorization.denied", "token.issued", "token.refreshed", "token.revoked")
    for event in (e for e in events if e["action"] in (*named, "tool.called", "grant.revoked")):
        assert event["client_name"] == "Agent <b>Smith</b>", event
    assert seen.counted("RefreshReuseDetected") == 1 and seen.counted("CodeReplayDetected") == 1
    assert seen.counted("TokensIssued") == 3 and seen.counted("TokensRefreshed") == 1
    assert seen.counted("ToolCalls", tool="whoami", outcome="success") == 1

    written = seen.text()
    for secret in secrets:
        assert secret and secret not in written
