"""Remembered consent: skipped only for a client its redirect proves (RFC 8252 section 8.6), bound
to the redirect URIs the person approved (RFC 9700 section 4.1), bounded in size."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.state.consent import MAX_CONSENTED_REDIRECTS, Consent, redirect_proves_client
from tests.facade_fakes import (
    CIMD_ID,
    CONF_REDIRECT,
    PUBLIC_REDIRECT,
    Facade,
    FakeResolver,
    approve,
    approve_page,
    callback,
    cimd_client,
    confidential_client,
    public_client,
    query_of,
    start,
    to_consent_page,
)
from tests.helpers import BASE_URL

# --------------------------------------------------------------------------- remembered consent
CONF = {"client_id": "conf-agent", "redirect_uri": CONF_REDIRECT}


def _remember(facade: Facade, client_id: str, redirect_uri: str) -> None:
    now = int(facade.clock.now)
    scopes = frozenset({"notes:read", "notes:write"})
    facade.consents.put(Consent("sub-alice", client_id, scopes, now, now, now + 99, redirect_uris=(redirect_uri,)))


def test_remembered_consent_skips_the_page_for_a_confidential_https_client(facade: Facade) -> None:
    _remember(facade, "conf-agent", CONF_REDIRECT)
    started = start(facade, **CONF)
    answer = callback(facade, started)
    assert answer.status == 302
    query = query_of(answer.headers["Location"])
    assert query["code"] and query["iss"] == BASE_URL and query["state"] == "client-state"


def test_remembered_consent_skips_the_page_for_a_cimd_client_on_its_own_host() -> None:
    facade = Facade(resolver=FakeResolver(cimd_client()))
    _remember(facade, CIMD_ID, "https://agent.example.net/cb")
    assert callback(facade, start(facade, client_id=CIMD_ID, redirect_uri="https://agent.example.net/cb")).status == 302


@pytest.mark.parametrize(
    "client",
    [
        public_client(),  # loopback
        public_client(redirect_uris=("com.example.agent:/oauth/cb",)),  # private-use scheme
        public_client(redirect_uris=("https://agent.example.org/cb",)),  # https, but public
        cimd_client(redirect_uris=("https://elsewhere.example.com/cb",)),  # CIMD, another host
        confidential_client(redirect_uris=("http://127.0.0.1:33418/cb",)),  # confidential, loopback
        confidential_client(redirect_uris=("https://127.0.0.1/cb",)),  # confidential, https loopback IP
        confidential_client(redirect_uris=("https://localhost/cb",)),  # confidential, https localhost
        cimd_client(redirect_uris=("https://agent.example.net:8443/cb",)),  # CIMD, its host, another port
    ],
)
def test_unproven_clients_always_see_the_page(client: Any) -> None:
    """RFC 8252 section 8.6: any local program can register the same public metadata (and
    gets the same client_id) or claim the loopback port / custom scheme, so a remembered
    consent must not approve it silently."""
    facade = Facade(resolver=FakeResolver(client))
    (redirect_uri,) = client.redirect_uris
    _remember(facade, client.client_id, redirect_uri)
    page = callback(facade, start(facade, client_id=client.client_id, redirect_uri=redirect_uri))
    assert page.status == 200 and "Your decision is not remembered" in page.body
    assert not facade.codes.items


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://127.0.0.1/cb",
        "https://127.1/cb",
        "https://2130706433/cb",
        "https://[::1]/cb",
        "https://10.0.0.7:8443/cb",
        "https://[2001:db8::1]/cb",
        "https://localhost/cb",
        "https://LOCALHOST./cb",
        "https://app.localhost/cb",
        "https://intranet/cb",
        "https://agent.example.org:99999/cb",
        "http://agent.example.org/cb",
        "com.example.agent:/cb",
    ],
)
def test_only_an_https_dns_name_proves_a_confidential_client(redirect_uri: str) -> None:
    # RFC 8252 sections 8.5-8.6: anyone can register a confidential client, and a native
    # app's secret is readable on its machine; only a certificate for a DNS name proves it.
    assert not redirect_proves_client(confidential_client(), redirect_uri)
    assert redirect_proves_client(confidential_client(), "https://Agent.Example.org./cb")


@pytest.mark.parametrize(
    ("redirect_uri", "proves"),
    [
        ("https://agent.example.net/cb", True),
        ("https://AGENT.example.net:443/cb", True),
        ("https://agent.example.net:8443/cb", False),  # same host, another origin
        ("http://agent.example.net/cb", False),
        ("https://other.example.net/cb", False),
        ("https://example.net/cb", False),
    ],
)
def test_a_cimd_client_is_proven_only_on_its_own_origin(redirect_uri: str, proves: bool) -> None:
    assert redirect_proves_client(cimd_client(), redirect_uri) is proves


def test_consent_not_covering_the_request_shows_the_page(facade: Facade) -> None:
    now = int(facade.clock.now)
    consent = Consent("sub-alice", "public-agent", frozenset({"notes:read"}), now, now, now + 99, (PUBLIC_REDIRECT,))
    facade.consents.put(consent)
    assert callback(facade, start(facade)).status == 200


def test_second_authorization_remembers_consent(facade: Facade) -> None:
    approve(facade, **CONF)
    started = start(facade, **CONF)
    answer = callback(facade, started)  # no page the second time
    assert answer.status == 302
    query = query_of(answer.headers["Location"])
    assert query["code"] and len(facade.grants.items) == 2


# --------------------------------------------------------------------------- consent is bound to the redirect URI
OTHER_REDIRECT = "https://agent.example.org/elsewhere"
EVIL_REDIRECT = "https://evil.example/cb"


def test_consent_without_remembered_redirect_uris_shows_the_page(facade: Facade) -> None:
    # An item written before redirect_uris existed approves no destination (fail closed).
    now = int(facade.clock.now)
    facade.consents.put(
        Consent("sub-alice", "public-agent", frozenset({"notes:read", "notes:write"}), now, now, now + 99)
    )
    assert callback(facade, start(facade)).status == 200


def test_consent_for_one_redirect_uri_does_not_skip_the_page_for_another() -> None:
    client = confidential_client(redirect_uris=(CONF_REDIRECT, OTHER_REDIRECT))
    facade = Facade(resolver=FakeResolver(client))
    approve(facade, **CONF)  # the user approved CONF_REDIRECT
    assert facade.consents.get("sub-alice", "conf-agent").redirect_uris == (CONF_REDIRECT,)
    started, page = to_consent_page(facade, client_id="conf-agent", redirect_uri=OTHER_REDIRECT)
    assert "agent.example.org" in page.body  # the page names where the code goes
    query = approve_page(facade, started, page)
    assert query["code"]
    remembered = facade.consents.get("sub-alice", "conf-agent")
    assert remembered.redirect_uris == (CONF_REDIRECT, OTHER_REDIRECT)  # approving adds it
    for uri in (CONF_REDIRECT, OTHER_REDIRECT):
        assert callback(facade, start(facade, client_id="conf-agent", redirect_uri=uri)).status == 302


def test_shared_client_takeover_via_changed_redirect_uris_shows_the_page() -> None:
    """The review's exploit at the consent layer: the client's redirect_uris change to an
    attacker's URI (a PUT on a shared public client); the victim's remembered consent must not
    send a code there silently."""
    facade = Facade()
    approve(facade)  # the victim approved the legitimate redirect URI
    facade.resolver.clients["public-agent"] = public_client(redirect_uris=(PUBLIC_REDIRECT, EVIL_REDIRECT))
    started = start(facade, redirect_uri=EVIL_REDIRECT)
    answer = callback(facade, started)
    assert answer.status == 200 and "Location" not in answer.headers  # the consent page, no code
    assert "evil.example" in answer.body
    assert len(facade.codes.items) == 1  # only the victim's own code


def test_another_local_program_is_never_approved_silently(facade: Facade) -> None:
    # The attack: a second program registers the same public metadata (same client_id) and
    # listens on another loopback port; the person's earlier approval must not carry over.
    approve(facade)
    started = start(facade, redirect_uri="http://127.0.0.1:50123/callback")
    page = callback(facade, started)
    assert page.status == 200 and len(facade.codes.items) == 1


def test_remembered_redirect_uris_are_bounded() -> None:
    uris = tuple(f"https://agent.example.org/cb{i}" for i in range(MAX_CONSENTED_REDIRECTS + 3))
    facade = Facade(resolver=FakeResolver(public_client(redirect_uris=uris)))
    for uri in uris:
        approve(facade, redirect_uri=uri)
    remembered = facade.consents.get("sub-alice", "public-agent").redirect_uris
    assert remembered == uris[-MAX_CONSENTED_REDIRECTS:]


def test_a_remembered_consent_records_the_clients_name_too(facade: Facade) -> None:
    _remember(facade, "conf-agent", CONF_REDIRECT)
    approve(facade, **CONF)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == "Confidential agent"
