"""The facade end to end through the real Lambda handlers against moto (DynamoDB, KMS, Cognito
admin + JWKS) and the real Cognito emulator on a loopback port: authorize -> emulator sign-in ->
callback -> consent -> token -> /mcp -> refresh -> reuse detection; ceilings, liberal spellings,
step-up, deny, and the production resolver.

Only the client resolver is an in-memory fake, except in the last test (the registration function
owns the real one)."""

from __future__ import annotations

import importlib
import json

from functions.core.platform.routes import ROUTES
from local.gateway import build_event
from tests.facade_fakes import (
    PUBLIC_REDIRECT,
    VERIFIER,
    code_form,
    query_of,
)
from tests.helpers import FakeContext
from tests.integration.facade_flow import (
    Facade,
    code_for,
    consent,
    exchange,
    invoke,
    mcp_tools,
    sign_in,
    token,
)
from tests.unit.metadata_docs import meta


def test_full_flow_with_refresh_reuse_detection_and_revocation(facade: Facade) -> None:
    cookie, page = sign_in(facade, "alice@example.com")
    assert page["statusCode"] == 200
    assert "alice@example.com" in page["body"] and "Write and archive your notes" in page["body"]
    assert page["headers"]["X-Frame-Options"] == "DENY"
    redirect = consent(facade, cookie, page)
    assert redirect["iss"] == facade.settings.base_url and redirect["state"] == "st-alice@example.com"

    status, first = exchange(facade, redirect["code"])
    assert status == 200, first
    assert first["scope"] == "notes:read notes:write" and "id_token" not in first
    assert mcp_tools(facade, first["access_token"]) == (200, {"whoami", "list_notes", "add_note", "archive_note"})

    status, second = token(facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200, second
    assert second["access_token"] != first["access_token"]
    assert mcp_tools(facade, second["access_token"])[0] == 200

    # Reuse of the rotated token outside any grace (strict token function): the whole grant
    # goes, and its still-valid JWTs stop at /mcp.
    status, reuse = token(facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, strict=True)
    assert (status, reuse["error"]) == (400, "invalid_grant")
    assert mcp_tools(facade, second["access_token"])[0] == 401
    status, _ = token(facade, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert status == 400


def test_bob_is_limited_by_the_editors_ceiling(facade: Facade) -> None:
    cookie, page = sign_in(facade, "bob@example.com")
    assert page["statusCode"] == 200 and "Not available to your account" in page["body"]
    status, body = exchange(facade, consent(facade, cookie, page)["code"])
    assert status == 200 and body["scope"] == "notes:read"
    assert mcp_tools(facade, body["access_token"]) == (200, {"whoami", "list_notes"})


def test_liberal_scope_and_resource_spellings_complete_the_flow(facade: Facade) -> None:
    # Clients add offline_access/openid and spell the resource with a trailing slash or upper
    # case: narrowed to notes:read (RFC 6749 section 3.3), compared normalised (RFC 3986 s6.2).
    odd_resource = facade.settings.mcp_url.upper().replace("/MCP", "/mcp/")
    code = code_for(facade, "alice@example.com", scope="notes:read offline_access openid", resource=odd_resource)
    status, body = token(
        facade,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PUBLIC_REDIRECT,
            "code_verifier": VERIFIER,
            "resource": facade.settings.mcp_url + "/",
        },
    )
    assert (status, body["scope"]) == (200, "notes:read")
    assert mcp_tools(facade, body["access_token"]) == (200, {"whoami", "list_notes"})
    status, again = token(
        facade, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "resource": odd_resource}
    )
    assert (status, again["scope"]) == (200, "notes:read")


def test_client_registered_for_read_steps_up_to_write(facade: Facade) -> None:
    form = {"client_id": "read-agent"}
    status, first = token(facade, {**form, **code_form(code_for(facade, "alice@example.com", scope="", **form))})
    assert (status, first["scope"]) == (200, "notes:read")
    code = code_for(facade, "alice@example.com", scope="notes:read notes:write", **form)
    status, stepped = token(facade, {**form, **code_form(code)})
    assert (status, stepped["scope"]) == (200, "notes:read notes:write")
    assert "add_note" in mcp_tools(facade, stepped["access_token"])[1]


def test_deny_sends_access_denied(facade: Facade) -> None:
    # another client: no consent remembered for it
    cookie, page = sign_in(facade, "bob@example.com", state="deny-me", client_id="other-agent")
    assert page["statusCode"] == 200
    redirect = consent(facade, cookie, page, decision="deny")
    assert redirect == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "deny-me",
        "iss": facade.settings.base_url,
    }


def test_unknown_client_gets_a_page(facade: Facade) -> None:
    answer = invoke(
        facade.authorization, "GET", "/authorize", query={"client_id": "ghost", "redirect_uri": PUBLIC_REDIRECT}
    )
    assert answer["statusCode"] == 400 and "Location" not in answer["headers"]


def test_dcr_client_through_the_production_resolver(facade: Facade) -> None:
    """Register with the real registration function, then authorize through the real resolver
    and redirect matcher (loopback on another port, RFC 8252 section 7.3)."""
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler
    import functions.token.api as token_api
    import functions.token.handler as token_handler

    registration = importlib.reload(importlib.import_module("functions.registration.handler")).handler
    route = next(r for r in ROUTES if r.method == "POST" and r.path == "/register")
    metadata = meta(client_name="Integration agent", redirect_uris=["http://127.0.0.1:1/callback"])
    event = build_event(
        method="POST",
        path="/register",
        raw_query="",
        headers=[("host", "localhost:8000"), ("content-type", "application/json")],
        body=json.dumps(metadata).encode(),
        route=route,
    )
    registered = registration(event, FakeContext())
    assert registered["statusCode"] == 201, registered["body"]
    client_id = json.loads(registered["body"])["client_id"]

    authorization = authorization_handler.build_service(facade.settings)  # real resolver and matcher
    token_service = token_handler.build_service(facade.settings)
    real = Facade(
        facade.stack,
        facade.settings,
        authorization_api.make_handler(lambda: authorization),
        token_api.make_handler(lambda: token_service),
        facade.mcp,
        facade.emulator_url,
        facade.token_strict,
    )
    redirect_uri = "http://127.0.0.1:43210/callback"
    cookie, page = sign_in(real, "alice@example.com", client_id=client_id, redirect_uri=redirect_uri)
    assert page["statusCode"] == 200 and "Integration agent" in page["body"]
    csrf = page["body"].split('name=csrf value="')[1].split('"')[0]
    done = invoke(real.authorization, "POST", "/consent", form={"csrf": csrf, "decision": "approve"}, cookie=cookie)
    assert done["headers"]["Location"].startswith(redirect_uri + "?")
    code = query_of(done["headers"]["Location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": VERIFIER,
        "client_id": client_id,
    }
    result = invoke(real.token, "POST", "/token", form=form)
    assert result["statusCode"] == 200, result["body"]
    assert mcp_tools(real, json.loads(result["body"])["access_token"])[0] == 200
