"""The Cognito hosted-endpoint emulator against a real moto server on loopback."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from jose import jwt
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from local.cognito_emulator import create_app

REGION = "us-east-1"
MCP = "http://localhost:8000/mcp"
CALLBACK = "http://localhost:8000/oauth/callback"
LOGOUT = "http://localhost:8000/signed-out"
READ, WRITE = f"{MCP}/notes:read", f"{MCP}/notes:write"
EMAIL, PASSWORD = "alice@example.com", "Correct-Horse-9!"


@dataclass(frozen=True)
class Stack:
    moto_url: str
    pool_id: str
    client_id: str
    secret: str
    sub: str
    http: TestClient


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            mp.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            moto_url = f"http://{host}:{port}"
            idp = boto3.client("cognito-idp", endpoint_url=moto_url, region_name=REGION)
            pool_id = idp.create_user_pool(PoolName="emu", UsernameAttributes=["email"])["UserPool"]["Id"]
            idp.create_resource_server(
                UserPoolId=pool_id,
                Identifier=MCP,
                Name="mcp",
                Scopes=[
                    {"ScopeName": "notes:read", "ScopeDescription": "read"},
                    {"ScopeName": "notes:write", "ScopeDescription": "write"},
                ],
            )
            client = idp.create_user_pool_client(
                UserPoolId=pool_id,
                ClientName="gateway",
                GenerateSecret=True,
                AllowedOAuthFlows=["code"],
                AllowedOAuthFlowsUserPoolClient=True,
                AllowedOAuthScopes=["openid", "email", READ, WRITE],
                CallbackURLs=[CALLBACK],
                LogoutURLs=[LOGOUT],
            )["UserPoolClient"]
            user = idp.admin_create_user(
                UserPoolId=pool_id,
                Username=EMAIL,
                UserAttributes=[{"Name": "email", "Value": EMAIL}, {"Name": "email_verified", "Value": "true"}],
                MessageAction="SUPPRESS",
            )["User"]
            idp.admin_set_user_password(UserPoolId=pool_id, Username=EMAIL, Password=PASSWORD, Permanent=True)
            idp.create_group(UserPoolId=pool_id, GroupName="editors")
            idp.admin_add_user_to_group(UserPoolId=pool_id, Username=EMAIL, GroupName="editors")
            sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
            app = create_app(moto_url=moto_url, region=REGION, user_pool_id=pool_id, public_url="http://localhost:8002")
            with TestClient(app, base_url="http://localhost:8002", follow_redirects=False) as http:
                yield Stack(moto_url, pool_id, client["ClientId"], client["ClientSecret"], sub, http)
        finally:
            server.stop()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(s: Stack, challenge: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": s.client_id,
        "redirect_uri": CALLBACK,
        "state": "st<a>te",
        "scope": f"openid email {READ}",
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(k): html.unescape(v) for k, v in re.findall(r'type=hidden name="([^"]*)" value="([^"]*)"', page)
    }


def sign_in(s: Stack, challenge: str | None = None, password: str = PASSWORD, **extra: str) -> httpx.Response:
    page = s.http.get("/oauth2/authorize", params=authorize_params(s, challenge, **extra))
    assert page.status_code == 200, page.text
    return s.http.post("/login", data=hidden_fields(page.text) | {"username": EMAIL, "password": password})


def get_code(s: Stack, challenge: str | None = None, **extra: str) -> str:
    resp = sign_in(s, challenge, **extra)
    assert resp.status_code == 302, resp.text
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"] == ["st<a>te"]
    return query["code"][0]


def token(s: Stack, secret: str | None = None, **form: str) -> httpx.Response:
    return s.http.post("/oauth2/token", data=form, auth=(s.client_id, secret or s.secret))


def exchange(s: Stack, code: str, verifier: str | None = None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    if verifier:
        form["code_verifier"] = verifier
    return token(s, **form)


def verify(s: Stack, token_: str, audience: str | None = None, access_token: str | None = None) -> dict[str, Any]:
    jwks = httpx.get(f"{s.moto_url}/{s.pool_id}/.well-known/jwks.json").json()
    claims: dict[str, Any] = jwt.decode(
        token_,
        jwks,
        algorithms=["RS256"],
        audience=audience,
        access_token=access_token,
        issuer=f"https://cognito-idp.{REGION}.amazonaws.com/{s.pool_id}",
        options={"verify_aud": audience is not None, "verify_at_hash": access_token is not None},
    )
    return claims


def test_happy_path_issues_cognito_shaped_tokens(stack: Stack) -> None:
    verifier, challenge = pkce()
    resp = exchange(stack, get_code(stack, challenge), verifier)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"]
    access = verify(stack, body["access_token"])
    assert access["token_use"] == "access"
    assert access["client_id"] == stack.client_id
    assert access["sub"] == stack.sub
    assert access["username"] == stack.sub  # email-as-username pools: the username is the sub
    assert access["scope"] == f"openid email {READ}"
    assert access["cognito:groups"] == ["editors"]
    assert access["version"] == 2
    assert access["exp"] - access["iat"] == 3600
    assert {"jti", "origin_jti", "event_id", "auth_time"} <= access.keys()
    assert "aud" not in access
    assert jwt.get_unverified_header(body["access_token"])["kid"] == "dummy"
    id_claims = verify(stack, body["id_token"], stack.client_id, body["access_token"])
    assert id_claims["token_use"] == "id"
    assert id_claims["aud"] == stack.client_id
    assert id_claims["email"] == EMAIL
    assert id_claims["email_verified"] is True
    assert id_claims["cognito:username"] == stack.sub
    assert id_claims["origin_jti"] == access["origin_jti"]


def test_resource_binds_audience(stack: Stack) -> None:
    body = exchange(stack, get_code(stack, resource=MCP)).json()
    assert verify(stack, body["access_token"])["aud"] == MCP


def test_unknown_resource_is_refused(stack: Stack) -> None:
    resp = stack.http.get("/oauth2/authorize", params=authorize_params(stack, resource="http://evil.example/mcp"))
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["invalid_request"]


def test_form_escapes_request_values(stack: Stack) -> None:
    page = stack.http.get("/login", params=authorize_params(stack)).text
    assert "st<a>te" not in page
    assert "st&lt;a&gt;te" in page


def test_wrong_password_rerenders_form(stack: Stack) -> None:
    resp = sign_in(stack, password="wrong-password")
    assert resp.status_code == 200
    assert "Incorrect username or password." in resp.text
    assert "location" not in resp.headers


def test_redirect_mismatch_renders_error_page(stack: Stack) -> None:
    resp = stack.http.get("/oauth2/authorize", params=authorize_params(stack, redirect_uri=CALLBACK + "/"))
    assert resp.status_code == 400
    assert "location" not in resp.headers
    assert "redirect_mismatch" in resp.text


def test_unknown_client_renders_error_page(stack: Stack) -> None:
    resp = stack.http.get("/oauth2/authorize", params=authorize_params(stack, client_id="nosuchclient"))
    assert resp.status_code == 400
    assert "location" not in resp.headers


def test_invalid_scope_redirects_with_error(stack: Stack) -> None:
    resp = stack.http.get("/oauth2/authorize", params=authorize_params(stack, scope="openid offline_access"))
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert query["state"] == ["st<a>te"]


def test_plain_pkce_is_refused(stack: Stack) -> None:
    params = authorize_params(stack, code_challenge="a" * 43, code_challenge_method="plain")
    resp = stack.http.get("/oauth2/authorize", params=params)
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["invalid_request"]


def test_pkce_mismatch_is_invalid_grant(stack: Stack) -> None:
    _, challenge = pkce()
    other_verifier, _ = pkce()
    resp = exchange(stack, get_code(stack, challenge), other_verifier)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant"}


def test_missing_verifier_is_invalid_grant(stack: Stack) -> None:
    _, challenge = pkce()
    assert exchange(stack, get_code(stack, challenge)).json() == {"error": "invalid_grant"}


def test_code_is_single_use(stack: Stack) -> None:
    code = get_code(stack)
    assert exchange(stack, code).status_code == 200
    second = exchange(stack, code)
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_grant"}


def test_wrong_redirect_uri_at_token_is_invalid_grant(stack: Stack) -> None:
    form = {"grant_type": "authorization_code", "code": get_code(stack), "redirect_uri": CALLBACK + "/x"}
    assert token(stack, **form).json() == {"error": "invalid_grant"}


def test_wrong_client_secret_is_invalid_client(stack: Stack) -> None:
    resp = token(stack, secret="not-the-secret", grant_type="authorization_code", code=get_code(stack))
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client"}


def test_client_secret_post_is_accepted(stack: Stack) -> None:
    form = {
        "grant_type": "authorization_code",
        "code": get_code(stack),
        "redirect_uri": CALLBACK,
        "client_id": stack.client_id,
        "client_secret": stack.secret,
    }
    assert stack.http.post("/oauth2/token", data=form).status_code == 200


def test_unsupported_grant_type(stack: Stack) -> None:
    assert token(stack, grant_type="password").json() == {"error": "unsupported_grant_type"}


def test_refresh_keeps_origin_jti_and_issues_new_jti(stack: Stack) -> None:
    first = exchange(stack, get_code(stack, resource=MCP)).json()
    refreshed = token(stack, grant_type="refresh_token", refresh_token=first["refresh_token"], scope="x")
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    old, new = verify(stack, first["access_token"]), verify(stack, refreshed.json()["access_token"])
    assert new["origin_jti"] == old["origin_jti"]
    assert new["jti"] != old["jti"]
    assert new["aud"] == MCP
    assert new["scope"] == old["scope"]
    assert verify(stack, refreshed.json()["id_token"])["origin_jti"] == old["origin_jti"]


def test_revoke_then_refresh_fails(stack: Stack) -> None:
    refresh_token = exchange(stack, get_code(stack)).json()["refresh_token"]
    revoked = stack.http.post("/oauth2/revoke", data={"token": refresh_token}, auth=(stack.client_id, stack.secret))
    assert revoked.status_code == 200
    assert revoked.content == b""
    again = token(stack, grant_type="refresh_token", refresh_token=refresh_token)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


def test_revoke_unknown_token_is_ok_and_access_token_is_unsupported(stack: Stack) -> None:
    auth = (stack.client_id, stack.secret)
    assert stack.http.post("/oauth2/revoke", data={"token": "unknown"}, auth=auth).status_code == 200
    access = exchange(stack, get_code(stack)).json()["access_token"]
    resp = stack.http.post("/oauth2/revoke", data={"token": access}, auth=auth)
    assert resp.status_code == 400
    assert resp.json() == {"error": "unsupported_token_type"}


def test_logout_redirects_only_to_registered_logout_url(stack: Stack) -> None:
    ok = stack.http.get("/logout", params={"client_id": stack.client_id, "logout_uri": LOGOUT})
    assert ok.status_code == 302
    assert ok.headers["location"] == LOGOUT
    bad = stack.http.get("/logout", params={"client_id": stack.client_id, "logout_uri": "http://evil.example/"})
    assert bad.status_code == 400
    assert "location" not in bad.headers
