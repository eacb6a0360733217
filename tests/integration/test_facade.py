"""The facade end to end through the real Lambda handlers against moto (DynamoDB, KMS, Cognito
admin + JWKS) and the real Cognito emulator on a loopback port:

authorize -> emulator sign-in -> callback -> consent -> token -> /mcp -> refresh -> reuse
detection -> revoke; plus ceilings, deny, remembered consent, and the code race.

Only the client resolver is an in-memory fake (the registration function owns the real one).
"""

from __future__ import annotations

import importlib
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import boto3
import httpx
import pytest
import uvicorn

from functions.core.cognito.token_cipher import KmsTokenCipher, grant_context
from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import Env, FacadeSettings
from functions.core.state.grants import DynamoGrantRepository
from local.cognito_emulator import create_app
from local.config import GRANTS_TABLE, REGION
from local.gateway import build_event
from local.html_forms import forms_of
from tests.facade_fakes import (
    CHALLENGE,
    CONF_REDIRECT,
    PUBLIC_REDIRECT,
    VERIFIER,
    FakeResolver,
    confidential_client,
    public_client,
    query_of,
)
from tests.helpers import FakeContext, rpc
from tests.integration.conftest import MotoStack

CONF_OTHER_REDIRECT = "https://agent.example.org/elsewhere"
PASSWORD = "Integration-Passw0rd!"  # tests/integration/conftest.py seeds every demo user with it
Handler = Any


@dataclass
class Facade:
    stack: MotoStack
    settings: FacadeSettings
    authorization: Handler
    token: Handler
    mcp: Handler
    emulator_url: str
    token_strict: Handler  # REFRESH_REUSE_GRACE_SECONDS=0

    @property
    def grants(self) -> DynamoGrantRepository:
        return DynamoGrantRepository(GRANTS_TABLE)


@pytest.fixture(scope="module")
def emulator(moto_stack: MotoStack) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before the thread starts: no wait for readiness
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        moto_url=moto_stack.cfg.moto_url, region=REGION, user_pool_id=moto_stack.seeded.user_pool_id, public_url=url
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def facade(moto_stack: MotoStack, emulator: str) -> Facade:
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler
    import functions.token.api as token_api
    import functions.token.handler as token_handler

    settings = FacadeSettings.from_env({**moto_stack.env, Env.COGNITO_DOMAIN_URL: emulator})
    resolver = FakeResolver(
        public_client(),
        public_client(client_id="other-agent"),
        public_client(client_id="read-agent", scope="notes:read"),
        confidential_client(),
        confidential_client(client_id="conf-two", redirect_uris=(CONF_REDIRECT, CONF_OTHER_REDIRECT)),
    )
    authorization = authorization_handler.build_service(settings, resolver)
    token = token_handler.build_service(settings, resolver)
    strict = token_handler.build_service(settings.model_copy(update={"refresh_reuse_grace_seconds": 0}), resolver)
    mcp = importlib.reload(importlib.import_module("functions.mcp_server.handler")).handler
    return Facade(
        moto_stack,
        settings,
        authorization_api.make_handler(lambda: authorization),
        token_api.make_handler(lambda: token),
        mcp,
        emulator,
        token_api.make_handler(lambda: strict),
    )


def invoke(
    handler: Handler,
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    cookie: str | None = None,
) -> dict[str, Any]:
    route = next(r for r in ROUTES if r.method == method and r.path == path)
    headers = [("host", "localhost:8000")]
    if form is not None:
        headers.append(("content-type", "application/x-www-form-urlencoded"))
    if cookie:
        headers.append(("cookie", cookie))
    event = build_event(
        method=method,
        path=path,
        raw_query=urlencode(query or {}),
        headers=headers,
        body=urlencode(form or {}).encode(),
        route=route,
    )
    result: dict[str, Any] = handler(event, FakeContext())
    return result


def emulator_login(location: str, email: str) -> str:
    """Sign in at the emulator's managed login page; the callback URL it redirects the browser to."""
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        page = http.get(location)
        assert page.status_code == 200, page.text
        form = forms_of(page.text)[0]
        login = http.post(
            urljoin(str(page.url), form.action or "/login"),
            data={**form.fields, "username": email, "password": PASSWORD},
        )
    assert login.status_code == 302, login.text
    return str(login.headers["location"])


def sign_in(facade: Facade, email: str, **params: str) -> tuple[str, dict[str, Any]]:
    """authorize -> emulator sign-in; (cookie, the callback's answer)."""
    query = {
        "response_type": "code",
        "client_id": "public-agent",
        "redirect_uri": PUBLIC_REDIRECT,
        "state": "st-" + email,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "scope": "notes:read notes:write",
        "resource": facade.settings.mcp_url,
        **params,
    }
    start = invoke(facade.authorization, "GET", "/authorize", query=query)
    assert start["statusCode"] == 302, start["body"]
    cookie = start["cookies"][0].split(";")[0]
    assert cookie.startswith("mcpkit_txn=")  # http://localhost: no __Host- prefix, no Secure
    location = start["headers"]["Location"]
    assert location.startswith(facade.emulator_url + "/oauth2/authorize?")
    back = emulator_login(location, email)
    assert back.startswith(facade.settings.base_url + "/oauth/callback?")
    answer = invoke(facade.authorization, "GET", "/oauth/callback", query=query_of(back), cookie=cookie)
    return cookie, answer


def consent(
    facade: Facade, cookie: str, page: dict[str, Any], decision: str = "approve", redirect_uri: str = PUBLIC_REDIRECT
) -> dict[str, str]:
    csrf = page["body"].split('name=csrf value="')[1].split('"')[0]
    done = invoke(facade.authorization, "POST", "/consent", form={"csrf": csrf, "decision": decision}, cookie=cookie)
    assert done["statusCode"] == 302, done["body"]
    assert done["headers"]["Location"].startswith(redirect_uri + "?")
    return query_of(done["headers"]["Location"])


def code_for(facade: Facade, email: str, **params: str) -> str:
    cookie, page = sign_in(facade, email, **params)
    if page["statusCode"] == 302:  # remembered consent
        return query_of(page["headers"]["Location"])["code"]
    assert page["statusCode"] == 200, page["body"]
    return consent(facade, cookie, page)["code"]


def token(facade: Facade, form: dict[str, str], *, strict: bool = False) -> tuple[int, dict[str, Any]]:
    handler = facade.token_strict if strict else facade.token
    result = invoke(handler, "POST", "/token", form={"client_id": "public-agent", **form})
    assert result["headers"]["Cache-Control"] == "no-store"
    return result["statusCode"], json.loads(result["body"] or "{}")


def exchange(facade: Facade, code: str) -> tuple[int, dict[str, Any]]:
    return token(
        facade,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": PUBLIC_REDIRECT, "code_verifier": VERIFIER},
    )


def mcp_tools(facade: Facade, access_token: str) -> tuple[int, set[str]]:
    event_headers = {
        "authorization": "Bearer " + access_token,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    route = next(r for r in ROUTES if r.method == "POST" and r.path == "/mcp")
    event = build_event(
        method="POST",
        path="/mcp",
        raw_query="",
        headers=[("host", "localhost:8000"), *event_headers.items()],
        body=json.dumps(rpc("tools/list", {"_meta": _meta()})).encode(),
        route=route,
    )
    result = facade.mcp(event, FakeContext())
    if result["statusCode"] != 200:
        return result["statusCode"], set()
    return 200, {t["name"] for t in json.loads(result["body"])["result"]["tools"]}


def _meta() -> dict[str, Any]:
    from tests.helpers import modern_meta

    return modern_meta()


# --------------------------------------------------------------------------- the whole flow
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


def test_revocation_bites_at_mcp_and_upstream(facade: Facade) -> None:
    status, body = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    grant_id = _origin_jti(body["access_token"])
    cipher = KmsTokenCipher(facade.settings.kms_key_id, boto3.client("kms", region_name=REGION))
    upstream_refresh = cipher.decrypt(facade.grants.get(grant_id).upstream_refresh, grant_context(grant_id)).decode()
    assert mcp_tools(facade, body["access_token"])[0] == 200

    revoked = invoke(
        facade.token, "POST", "/revoke", form={"token": body["refresh_token"], "client_id": "public-agent"}
    )
    assert revoked["statusCode"] == 200
    assert facade.grants.get(grant_id).status == "revoked"
    assert mcp_tools(facade, body["access_token"])[0] == 401  # GRANT_CACHE_SECONDS=0 in this stack
    # Cognito's own refresh token was revoked too.
    secret = facade.stack.seeded.gateway_client_secret
    upstream = httpx.post(
        facade.emulator_url + "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": upstream_refresh},
        auth=(facade.stack.seeded.gateway_client_id, secret),
    )
    assert upstream.status_code == 400 and upstream.json()["error"] == "invalid_grant"
    # Unknown tokens are fine (RFC 7009 section 2.2).
    assert (
        invoke(facade.token, "POST", "/revoke", form={"token": "nope", "client_id": "public-agent"})["statusCode"]
        == 200
    )


def test_revoking_an_access_token(facade: Facade) -> None:
    status, body = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    form = {"token": body["access_token"], "token_type_hint": "access_token", "client_id": "public-agent"}
    assert invoke(facade.token, "POST", "/revoke", form=form)["statusCode"] == 200
    assert mcp_tools(facade, body["access_token"])[0] == 401


def test_bob_is_limited_by_the_editors_ceiling(facade: Facade) -> None:
    cookie, page = sign_in(facade, "bob@example.com")
    assert page["statusCode"] == 200 and "Not available to your account" in page["body"]
    status, body = exchange(facade, consent(facade, cookie, page)["code"])
    assert status == 200 and body["scope"] == "notes:read"
    assert mcp_tools(facade, body["access_token"]) == (200, {"whoami", "list_notes"})


def sign_in_confidential(
    facade: Facade, email: str, redirect_uri: str = CONF_REDIRECT, client_id: str = "conf-agent"
) -> tuple[str, dict[str, Any]]:
    return sign_in(facade, email, client_id=client_id, redirect_uri=redirect_uri, scope="notes:read")


def test_remembered_consent_skips_the_page_only_for_a_proven_client(facade: Facade) -> None:
    # RFC 8252 section 8.6: a loopback public client cannot prove who it is, so even with a
    # remembered consent it sees the page every time.
    code_for(facade, "alice@example.com", scope="notes:read")
    _, answer = sign_in(facade, "alice@example.com", scope="notes:read")
    assert answer["statusCode"] == 200 and "csrf" in answer["body"]
    # A confidential client's https redirect proves the client: the page is skipped.
    cookie, page = sign_in_confidential(facade, "alice@example.com")
    assert page["statusCode"] == 200
    consent(facade, cookie, page, redirect_uri=CONF_REDIRECT)
    _, again = sign_in_confidential(facade, "alice@example.com")
    assert again["statusCode"] == 302 and again["headers"]["Location"].startswith(CONF_REDIRECT + "?code=")


def _consent_item(client_id: str) -> dict[str, Any]:
    from functions.core.platform.ddb import from_item

    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=GRANTS_TABLE)["Items"]
    (found,) = [
        from_item(i) for i in items if i.get("kind", {}).get("S") == "consent" and i["client_id"]["S"] == client_id
    ]
    return found


def test_consent_is_bound_to_the_redirect_uri(facade: Facade) -> None:
    """RFC 9700 section 4.1: consent remembered for one redirect URI does not send a code to
    another one silently; approving the other adds it (stored in DynamoDB)."""
    cookie, page = sign_in_confidential(facade, "bob@example.com", client_id="conf-two")
    consent(facade, cookie, page, redirect_uri=CONF_REDIRECT)
    assert _consent_item("conf-two")["redirect_uris"] == [CONF_REDIRECT]
    cookie, page = sign_in_confidential(facade, "bob@example.com", CONF_OTHER_REDIRECT, "conf-two")
    assert page["statusCode"] == 200 and "Location" not in page["headers"]  # same scopes, new destination
    consent(facade, cookie, page, redirect_uri=CONF_OTHER_REDIRECT)
    assert _consent_item("conf-two")["redirect_uris"] == [CONF_REDIRECT, CONF_OTHER_REDIRECT]
    _, again = sign_in_confidential(facade, "bob@example.com", CONF_OTHER_REDIRECT, "conf-two")
    assert again["statusCode"] == 302 and again["headers"]["Location"].startswith(CONF_OTHER_REDIRECT + "?code=")


def test_refresh_scope_narrowing_through_dynamodb(facade: Facade) -> None:
    from functions.core.platform.crypto import sha256_hex
    from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository

    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200 and first["scope"] == "notes:read notes:write"
    rts = DynamoRefreshTokenRepository(GRANTS_TABLE)
    assert rts.get(sha256_hex(first["refresh_token"])).scopes == {"notes:read", "notes:write"}
    status, narrowed = token(
        facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "notes:read"}
    )
    assert (status, narrowed["scope"]) == (200, "notes:read")
    # RFC 6749 section 6: the successor keeps the presented token's scope.
    assert rts.get(sha256_hex(narrowed["refresh_token"])).scopes == {"notes:read", "notes:write"}
    # The narrowed scope is enforced at /mcp: the grant's current session holds it.
    assert mcp_tools(facade, narrowed["access_token"]) == (200, {"whoami", "list_notes"})
    status, full = token(facade, {"grant_type": "refresh_token", "refresh_token": narrowed["refresh_token"]})
    assert (status, full["scope"]) == (200, "notes:read notes:write")
    assert mcp_tools(facade, full["access_token"]) == (200, {"whoami", "list_notes", "add_note", "archive_note"})


def test_same_refresh_token_twice_within_the_grace(facade: Facade) -> None:
    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    results = [token(facade, form) for _ in range(2)]  # a lost response, then its retry
    assert [status for status, _ in results] == [200, 200]
    for _, pair in results:
        assert mcp_tools(facade, pair["access_token"])[0] == 200
        assert token(facade, {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})[0] == 200
    assert facade.grants.get(_origin_jti(first["access_token"])).status == "active"


def test_parallel_refreshes_through_dynamodb_never_revoke(facade: Facade) -> None:
    # Losing a parallel race is never theft. (The exact bound on grace pairs under
    # concurrency is asserted against the in-memory twin in tests/unit/test_token_grace.py:
    # moto does not serialise concurrent TransactWriteItems the way DynamoDB does; sequentially
    # it enforces the same conditions, tests/unit/test_state_parity.py.)
    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: token(facade, form), range(6)))
    won = [body for status, body in results if status == 200]
    assert won and all(body["error"] == "invalid_grant" for status, body in results if status != 200)
    assert facade.grants.get(_origin_jti(first["access_token"])).status == "active"
    assert all(mcp_tools(facade, body["access_token"])[0] == 200 for body in won)


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
    status, first = token(facade, {**form, **_code_form(code_for(facade, "alice@example.com", scope="", **form))})
    assert (status, first["scope"]) == (200, "notes:read")
    code = code_for(facade, "alice@example.com", scope="notes:read notes:write", **form)
    status, stepped = token(facade, {**form, **_code_form(code)})
    assert (status, stepped["scope"]) == (200, "notes:read notes:write")
    assert "add_note" in mcp_tools(facade, stepped["access_token"])[1]


def _code_form(code: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PUBLIC_REDIRECT,
        "code_verifier": VERIFIER,
    }


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


def test_code_redemption_through_dynamodb(facade: Facade) -> None:
    # Sequential semantics against moto (its TransactWriteItems is not thread-safe; the
    # 50-way races run against the in-memory twins in tests/fault/test_races.py).
    code = code_for(facade, "alice@example.com")
    grant_id = _grant_of_code(facade, code)
    assert facade.grants.get(grant_id).status == "pending"  # until its code is redeemed
    status, first = exchange(facade, code)
    assert status == 200 and facade.grants.get(grant_id).status == "active"
    # The identical request again (a lost answer): the same answer, nothing revoked.
    status, again = exchange(facade, code)
    assert status == 200 and again["refresh_token"] == first["refresh_token"]
    assert mcp_tools(facade, again["access_token"])[0] == 200
    # Another verifier is a replay (RFC 6749 section 4.1.2): refused, the grant revoked.
    status, replay = token(
        facade,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": PUBLIC_REDIRECT, "code_verifier": "w" * 43},
    )
    assert (status, replay["error"]) == (400, "invalid_grant")
    assert facade.grants.get(grant_id).status == "revoked"
    assert mcp_tools(facade, first["access_token"])[0] == 401


def _grant_of_code(facade: Facade, code: str) -> str:
    from functions.core.platform.crypto import sha256_hex
    from functions.core.state.codes import DynamoAuthorizationCodeRepository

    record = DynamoAuthorizationCodeRepository(facade.settings.artefacts_table, grants_table=GRANTS_TABLE).get(
        sha256_hex(code)
    )
    assert record is not None
    return record.grant_id


def _origin_jti(access_token: str) -> str:
    from jose import jwt

    return str(jwt.get_unverified_claims(access_token)["origin_jti"])


# --------------------------------------------------------------------------- production wiring
def test_dcr_client_through_the_production_resolver(facade: Facade) -> None:
    """Register with the real registration function, then authorize through the real resolver
    and redirect matcher (loopback on another port, RFC 8252 section 7.3)."""
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler
    import functions.token.api as token_api
    import functions.token.handler as token_handler

    registration = importlib.reload(importlib.import_module("functions.registration.handler")).handler
    route = next(r for r in ROUTES if r.method == "POST" and r.path == "/register")
    metadata = {
        "client_name": "Integration agent",
        "redirect_uris": ["http://127.0.0.1:1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
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
