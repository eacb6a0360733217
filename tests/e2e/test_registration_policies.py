"""Each REGISTRATION_POLICY end to end: `python -m local` with the variable set, driven by the SDK client.

* ``open``: DCR and CIMD (the shared stack; its full flows are in test_sdk_flow.py);
* ``cimd-only``: no registration endpoint (404, not advertised), a CIMD client completes the flow;
* ``closed``: neither; a CIMD client_id is an unknown client at /authorize, and only a client
  an operator put in the registry gets tokens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from mcp.client.auth.exceptions import OAuthRegistrationError
from mcp.shared.auth import OAuthClientInformationFull

from functions.core.clients.records import ClientRecord
from functions.core.clients.store import DynamoClientStore
from functions.core.platform.crypto import new_secret, sha256_hex
from local.config import CLIENTS_TABLE, FAKE_CREDENTIALS, REGION
from tests.e2e.conftest import RunningStack, run_stack
from tests.e2e.oauth_harness import CimdServer
from tests.e2e.test_sdk_flow import Agent, _structured

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PUBLIC = {
    "client_name": "policy probe",
    "redirect_uris": ["http://127.0.0.1:33418/callback"],
    "token_endpoint_auth_method": "none",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cimd_only_stack(tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    yield from run_stack(tls_files, REGISTRATION_POLICY="cimd-only")


@pytest.fixture(scope="module")
def closed_stack(tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    yield from run_stack(tls_files, REGISTRATION_POLICY="closed")


def _as_metadata(stack: RunningStack) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(stack.cfg.base_url + "/.well-known/oauth-authorization-server").json()
    return doc


def _assert_registration_not_offered(stack: RunningStack, *, cimd: bool, instead: str) -> None:
    """RFC 8414 metadata without registration_endpoint, and POST /register a 404 saying what to do."""
    doc = _as_metadata(stack)
    assert "registration_endpoint" not in doc
    assert doc["client_id_metadata_document_supported"] is cimd
    refused = httpx.post(stack.cfg.base_url + "/register", json=PUBLIC)
    assert refused.status_code == 404
    assert instead in refused.json()["error_description"]


def _publish(cimd_server: CimdServer, agent: Agent, path: str) -> str:
    url = cimd_server.url(path)
    cimd_server.publish(
        path,
        {
            "client_id": url,
            "client_name": "Policy CIMD agent",
            "redirect_uris": [agent.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    return url


async def _tools(agent: Agent) -> set[str]:
    async with agent.session() as client:
        me = _structured(await client.call_tool("whoami", {}))
        assert me["email"] == "alice@example.com"
        return {t.name for t in (await client.list_tools()).tools}


def test_open_offers_registration_and_cimd(stack: RunningStack) -> None:
    doc = _as_metadata(stack)
    assert doc["registration_endpoint"] == stack.cfg.base_url + "/register"
    assert doc["client_id_metadata_document_supported"] is True
    assert httpx.post(stack.cfg.base_url + "/register", json=PUBLIC).status_code == 201


async def test_cimd_only_refuses_dcr_and_serves_cimd(cimd_only_stack: RunningStack, cimd_server: CimdServer) -> None:
    stack = cimd_only_stack
    _assert_registration_not_offered(stack, cimd=True, instead="Client ID Metadata Document")

    agent = Agent(stack, "alice@example.com")
    agent.provider.context.client_metadata_url = _publish(cimd_server, agent, "/agents/policy-cimd-only.json")
    assert "list_notes" in await _tools(agent)
    assert agent.storage.client_info is not None
    assert agent.storage.client_info.client_id.startswith("https://")

    # A client that can only register dynamically (the SDK then tries <B>/register anyway) gets
    # the 404 and its explanation, and never reaches /authorize.
    dcr_only = Agent(stack, "alice@example.com")
    with pytest.raises(BaseExceptionGroup) as raised:
        await _tools(dcr_only)
    errors = [e for e in _leaves(raised.value) if isinstance(e, OAuthRegistrationError)]
    assert errors and "404" in str(errors[0]) and "Client ID Metadata Document" in str(errors[0])
    assert dcr_only.user.authorization_urls == []


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _operator_registers(stack: RunningStack, redirect_uri: str) -> OAuthClientInformationFull:
    """What an operator does under `closed`: write a confidential client into the registry."""
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.cfg.moto_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    secret, client_id = new_secret(), "operator" + new_secret()[:16].replace("-", "x").replace("_", "y")
    record = ClientRecord(
        client_id=client_id,
        kind="registered",
        redirect_uris=(redirect_uri,),
        token_endpoint_auth_method="client_secret_post",
        client_name="Operator-registered agent",
        client_secret_hash=sha256_hex(secret),
        metadata={"client_name": "Operator-registered agent", "redirect_uris": [redirect_uri]},
    )
    DynamoClientStore(CLIENTS_TABLE, idle_days=30, client=ddb).create(record, max_clients=10_000, now=int(time.time()))
    return OAuthClientInformationFull(
        client_id=client_id,
        client_secret=secret,
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        token_endpoint_auth_method="client_secret_post",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )


async def test_closed_admits_only_operator_clients(closed_stack: RunningStack, cimd_server: CimdServer) -> None:
    stack = closed_stack
    _assert_registration_not_offered(stack, cimd=False, instead="operator")

    # A CIMD client_id is an unknown client: an error page, never a redirect, nothing fetched.
    probe = Agent(stack, "alice@example.com")
    url = _publish(cimd_server, probe, "/agents/policy-closed.json")
    page = httpx.get(
        stack.cfg.base_url + "/authorize",
        params={
            "client_id": url,
            "redirect_uri": probe.redirect_uri,
            "response_type": "code",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "state": "s",
        },
    )
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "/agents/policy-closed.json" not in cimd_server.requests

    # The operator's client completes the flow with the official SDK client.
    agent = Agent(stack, "alice@example.com")
    agent.storage.client_info = _operator_registers(stack, agent.redirect_uri)
    assert "add_note" in await _tools(agent)
    assert agent.user.results[-1]["iss"] == [stack.cfg.base_url]
