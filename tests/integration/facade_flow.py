"""The facade through the real Lambda handlers, as the integration tests drive it: events built by the
local gateway, sign-in at the Cognito emulator, consent, /token and /mcp (the fixtures that build it
are in tests/integration/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

import boto3
import httpx

from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import FacadeSettings
from functions.core.state.grants import DynamoGrantRepository
from local.config import GRANTS_TABLE, REGION
from local.gateway import build_event
from local.html_forms import forms_of
from tests.facade_fakes import (
    CHALLENGE,
    CONF_REDIRECT,
    PUBLIC_REDIRECT,
    code_form,
    query_of,
)
from tests.helpers import FakeContext, rpc

if TYPE_CHECKING:
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
    return token(facade, code_form(code))


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


def sign_in_confidential(
    facade: Facade, email: str, redirect_uri: str = CONF_REDIRECT, client_id: str = "conf-agent"
) -> tuple[str, dict[str, Any]]:
    return sign_in(facade, email, client_id=client_id, redirect_uri=redirect_uri, scope="notes:read")


def consent_item(client_id: str) -> dict[str, Any]:
    from functions.core.platform.ddb import from_item

    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=GRANTS_TABLE)["Items"]
    (found,) = [
        from_item(i) for i in items if i.get("kind", {}).get("S") == "consent" and i["client_id"]["S"] == client_id
    ]
    return found


def grant_of_code(facade: Facade, code: str) -> str:
    from functions.core.platform.crypto import sha256_hex
    from functions.core.state.codes import DynamoAuthorizationCodeRepository

    record = DynamoAuthorizationCodeRepository(facade.settings.artefacts_table, grants_table=GRANTS_TABLE).get(
        sha256_hex(code)
    )
    assert record is not None
    return record.grant_id


def origin_jti(access_token: str) -> str:
    from jose import jwt

    return str(jwt.get_unverified_claims(access_token)["origin_jti"])
