"""REGISTRATION_POLICY: one enum, enforced by metadata, registration and client resolution."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients import resolver as client_resolver
from functions.core.clients.cimd import CimdResolver
from functions.core.clients.resolver import KitClientResolver, make_client_resolver
from functions.core.platform.settings import (
    Env,
    FacadeSettings,
    MetadataSettings,
    RegistrationPolicy,
    RegistrationSettings,
    SettingsError,
)
from functions.metadata.documents import authorization_server_metadata
from tests.facade_fakes import CIMD_ID, facade_settings, public_client
from tests.fakes.clients import InMemoryClientStore
from tests.helpers import BASE_URL

FACADE_ENV = {
    Env.BASE_URL: BASE_URL,
    Env.USER_POOL_ID: "us-east-1_Abc123",
    Env.REGION: "us-east-1",
    Env.GATEWAY_CLIENT_ID: "gateway",
    Env.COGNITO_DOMAIN_URL: "https://auth.example.com",
    Env.CLIENTS_TABLE: "clients",
    Env.ARTEFACTS_TABLE: "artefacts",
    Env.GRANTS_TABLE: "grants",
    Env.KMS_KEY_ID: "alias/kit",
}


@pytest.mark.parametrize("model", [MetadataSettings, RegistrationSettings, FacadeSettings])
@pytest.mark.parametrize("value", ["closd", "Open", "", "cimd_only", "dcr_only", "true"])
def test_anything_but_the_four_policies_fails_at_cold_start(model: Any, value: str) -> None:
    with pytest.raises(SettingsError, match=Env.REGISTRATION_POLICY):
        model.from_env({**FACADE_ENV, Env.REGISTRATION_POLICY: value})


@pytest.mark.parametrize("model", [MetadataSettings, RegistrationSettings, FacadeSettings])
def test_default_policy_is_open(model: Any) -> None:
    assert model.from_env(FACADE_ENV).registration_policy is RegistrationPolicy.OPEN


def _metadata(policy: str) -> dict[str, Any]:
    return authorization_server_metadata(
        MetadataSettings.from_env({Env.BASE_URL: BASE_URL, Env.REGISTRATION_POLICY: policy})
    )


def test_open_advertises_registration_and_cimd() -> None:
    doc = _metadata("open")
    assert doc["registration_endpoint"] == BASE_URL + "/register"
    assert doc["client_id_metadata_document_supported"] is True


def test_cimd_only_omits_the_registration_endpoint() -> None:
    """RFC 8414 s2: registration_endpoint only where RFC 7591 registration is offered."""
    doc = _metadata("cimd-only")
    assert "registration_endpoint" not in doc
    assert doc["client_id_metadata_document_supported"] is True


def test_dcr_only_advertises_registration_and_no_metadata_documents() -> None:
    # MCP authorization 2025-11-25: a client that prefers Client ID Metadata Documents uses
    # them only where the server says it supports them, and registers otherwise.
    doc = _metadata("dcr-only")
    assert doc["registration_endpoint"] == BASE_URL + "/register"
    assert doc["client_id_metadata_document_supported"] is False


def test_closed_advertises_neither() -> None:
    doc = _metadata("closed")
    assert "registration_endpoint" not in doc
    assert doc["client_id_metadata_document_supported"] is False
    # Everything else a client needs is still there.
    assert doc["authorization_endpoint"] == BASE_URL + "/authorize"
    assert doc["code_challenge_methods_supported"] == ["S256"]


class _NoFetch(CimdResolver):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def resolve(self, client_id: str) -> Any:
        self.asked.append(client_id)
        return None


def test_closed_resolver_never_fetches_a_metadata_document(monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher = _NoFetch()
    monkeypatch.setattr(client_resolver, "CimdResolver", lambda *_, **__: fetcher)
    for policy in ("closed", "dcr-only"):
        assert make_client_resolver(facade_settings(registration_policy=policy)).resolve(CIMD_ID) is None
    assert fetcher.asked == []
    for policy in ("open", "cimd-only"):
        make_client_resolver(facade_settings(registration_policy=policy)).resolve(CIMD_ID)
    assert fetcher.asked == [CIMD_ID, CIMD_ID]


def test_closed_still_resolves_clients_in_the_registry() -> None:
    """Only clients an operator registered: records in the registry still resolve."""
    store = InMemoryClientStore()
    record = store.create(public_client(client_id="operatorclient0001"), max_clients=10, now=1_800_000_000)
    resolver = KitClientResolver(store, None, clock=lambda: 1_800_000_100.0)
    found = resolver.resolve(record.client_id)
    assert found is not None and found.client_id == record.client_id
    assert resolver.resolve(CIMD_ID) is None


def test_policy_properties() -> None:
    assert [p.offers_registration for p in RegistrationPolicy] == [True, False, True, False]
    assert [p.accepts_cimd for p in RegistrationPolicy] == [True, True, False, False]
    assert isinstance(facade_settings(registration_policy="cimd-only").registration_policy, RegistrationPolicy)
    assert FacadeSettings.model_fields["registration_policy"].default is RegistrationPolicy.OPEN
