"""Get a real access token from the local stack, the way the facade will, minus consent.

Drives the Cognito emulator's managed login as a browser would (authorize -> sign-in form
-> code), exchanges the code with the gateway client's secret and a PKCE verifier, then
records the grant the MCP endpoint checks. The authorization facade (consent) will create
grants itself; until then this is how a developer or a test gets a working token:

    python -m local.devtoken alice@example.com --scope "todos:read todos:write"
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import boto3
import httpx
from jose import jwt

from functions.core.oauth import scopes
from functions.core.platform.routes import CALLBACK_PATH, MCP_PATH
from functions.core.state.grants import DynamoGrantRepository, Grant
from local.config import FAKE_CREDENTIALS, GATEWAY_CLIENT_NAME, GRANTS_TABLE, POOL_NAME, REGION, LocalConfig
from local.html_forms import forms_of

GRANT_LIFETIME_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class DevToken:
    access_token: str
    refresh_token: str
    sub: str
    origin_jti: str


def gateway_client(cfg: LocalConfig) -> tuple[str, str, str]:
    """(user pool id, gateway client id, client secret), read from moto like an operator would."""
    idp = boto3.client("cognito-idp", region_name=REGION, endpoint_url=cfg.moto_url)
    pool = next(p for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == POOL_NAME)
    clients = idp.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)["UserPoolClients"]
    client_id = next(c["ClientId"] for c in clients if c["ClientName"] == GATEWAY_CLIENT_NAME)
    secret = idp.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=client_id)["UserPoolClient"]["ClientSecret"]
    return pool["Id"], client_id, secret


def sign_in(cfg: LocalConfig, email: str, password: str, kit_scopes: list[str]) -> DevToken:
    _, client_id, secret = gateway_client(cfg)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = cfg.base_url + CALLBACK_PATH
    resource = cfg.base_url + MCP_PATH
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "scope": " ".join(["openid", *(scopes.cognito_scope(resource, s) for s in kit_scopes)]),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        page = http.get(cfg.cognito_url + "/oauth2/authorize", params=params)
        page.raise_for_status()
        forms = forms_of(page.text)
        if not forms:
            raise RuntimeError(f"no sign-in form at {page.url}")
        form = forms[0]
        fields: dict[str, Any] = {**form.fields, "username": email, "password": password}
        login = http.post(urljoin(str(page.url), form.action or "/login"), data=fields)
        if login.status_code != 302:
            raise RuntimeError(f"sign-in failed for {email} (HTTP {login.status_code})")
        query = parse_qs(urlsplit(login.headers["location"]).query)
        if query.get("state") != [state] or "code" not in query:
            raise RuntimeError(f"sign-in did not return a code: {sorted(query)}")
        token = http.post(
            cfg.cognito_url + "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
        token.raise_for_status()
        body = token.json()
    claims = jwt.get_unverified_claims(body["access_token"])
    return DevToken(body["access_token"], body.get("refresh_token", ""), claims["sub"], claims["origin_jti"])


def record_grant(cfg: LocalConfig, token: DevToken, email: str, kit_scopes: list[str], client_id: str) -> Grant:
    now = int(time.time())
    grant = Grant(
        grant_id=token.origin_jti,
        sub=token.sub,
        username=email,
        email=email,
        client_id=client_id,
        scopes=frozenset(kit_scopes),
        created_at=now,
        expires_at=now + GRANT_LIFETIME_SECONDS,
    )
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=cfg.moto_url)
    DynamoGrantRepository(GRANTS_TABLE, client).create(grant)
    return grant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email", help="a demo user, e.g. alice@example.com")
    parser.add_argument("--scope", default=" ".join(scopes.default_scopes()), help="kit scopes, space-separated")
    parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD"), help="defaults to $DEMO_PASSWORD")
    parser.add_argument("--client-id", default="devtoken-cli", help="the agent name recorded on the grant")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error("give --password or set DEMO_PASSWORD (make dev prints the generated one)")
    wanted = args.scope.split()
    unknown = [s for s in wanted if scopes.get_scope(s) is None]
    if unknown:
        parser.error(f"unknown scopes {unknown}; the catalogue has {list(scopes.scope_names())}")
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    cfg = LocalConfig.from_env()
    from botocore.exceptions import BotoCoreError

    try:
        token = sign_in(cfg, args.email, args.password, wanted)
        record_grant(cfg, token, args.email, wanted, args.client_id)
    except RuntimeError as exc:  # the emulated sign-in refused: wrong password, disabled user
        parser.exit(1, f"{parser.prog}: {exc}; the password is the one make dev printed for {args.email}\n")
    except (httpx.HTTPError, BotoCoreError) as exc:
        parser.exit(
            1,
            f"{parser.prog}: cannot reach make dev ({exc.__class__.__name__}): is it running, on the same "
            "PORT, MOTO_PORT and COGNITO_PORT?\n",
        )
    sys.stdout.write(token.access_token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
