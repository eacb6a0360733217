"""Revocation through the real token handler (RFC 7009): it bites at /mcp and at Cognito."""

from __future__ import annotations

import boto3
import httpx

from functions.core.cognito.token_cipher import KmsTokenCipher, grant_context
from local.config import REGION
from tests.integration.facade_flow import (
    Facade,
    code_for,
    exchange,
    invoke,
    mcp_tools,
    origin_jti,
)


def test_revocation_bites_at_mcp_and_upstream(facade: Facade) -> None:
    status, body = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    grant_id = origin_jti(body["access_token"])
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
