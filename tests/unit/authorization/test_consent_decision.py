"""POST /consent: approve (grant, consent, a hashed single-use code) or deny; CSRF, cookie, once only."""

from __future__ import annotations

import unicodedata

import pytest

from functions.core.clients.metadata import MAX_NAME_LENGTH
from functions.core.cognito.token_cipher import grant_context
from functions.core.platform.crypto import sha256_hex
from tests.facade_fakes import (
    PUBLIC_REDIRECT,
    Facade,
    FakeResolver,
    approve,
    approve_page,
    csrf_of,
    public_client,
    query_of,
    start,
    to_consent_page,
)
from tests.helpers import BASE_URL


# --------------------------------------------------------------------------- POST /consent
def test_approve_records_grant_consent_and_a_hashed_short_code(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    query = approve_page(facade, started, page)
    assert (query["state"], query["iss"]) == ("client-state", BASE_URL)
    code = query["code"]
    assert len(code) >= 43 and code not in facade.codes.items  # 256 bits, stored only hashed
    record = facade.codes.items[sha256_hex(code)]
    assert record.expires_at - record.created_at <= 60
    assert (record.client_id, record.redirect_uri, record.resource) == (
        "public-agent",
        PUBLIC_REDIRECT,
        BASE_URL + "/mcp",
    )
    (grant,) = facade.grants.items.values()
    assert (grant.sub, grant.client_id, grant.email, grant.username) == (
        "sub-alice",
        "public-agent",
        "alice@example.com",
        "alice",
    )
    # Pending until the code is redeemed; it expires with the code.
    assert grant.scopes == {"notes:read", "notes:write"} and grant.status == "pending"
    assert grant.expires_at == record.expires_at
    (refresh,) = facade.cognito.sessions
    assert facade.cipher.decrypt(grant.upstream_refresh or b"", grant_context(grant.grant_id)) == refresh.encode()
    assert facade.consents.get("sub-alice", "public-agent") is not None
    assert facade.txns.items[started.txn_id].status == "decided"


def test_deny_redirects_access_denied_and_revokes_upstream(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "deny"}, started.cookie)
    query = query_of(answer.headers["Location"])
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state", BASE_URL)
    assert list(facade.cognito.sessions) == [] and len(facade.cognito.revoked) == 1
    assert not facade.grants.items and not facade.codes.items


def test_wrong_csrf_is_forbidden_and_changes_nothing(facade: Facade) -> None:
    started, _ = to_consent_page(facade)
    answer = facade.authorization().consent({"csrf": "forged", "decision": "approve"}, started.cookie)
    assert answer.status == 403
    assert facade.txns.items[started.txn_id].status == "authenticated" and not facade.grants.items


def test_consent_needs_the_cookie(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    assert facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, None).status == 400


def test_consent_is_decided_once(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    approve_page(facade, started, page)
    again = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert again.status == 400 and len(facade.codes.items) == 1


def test_consent_before_the_callback_is_refused(facade: Facade) -> None:
    started = start(facade)
    assert facade.authorization().consent({"csrf": "x", "decision": "approve"}, started.cookie).status == 400


@pytest.mark.parametrize("form", [None, {"csrf": "x"}, {"csrf": "x", "decision": "maybe"}])
def test_malformed_consent_forms(facade: Facade, form: dict | None) -> None:
    started, page = to_consent_page(facade)
    if form is not None:
        form = {**form, "csrf": csrf_of(page)}
    assert facade.authorization().consent(form, started.cookie).status == 400
    assert facade.txns.items[started.txn_id].status == "authenticated"


def test_expired_transaction_cannot_be_approved(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    facade.clock.now += 601
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert answer.status == 400 and not facade.codes.items


# --------------------------------------------------------------------------- the agent's name on the grant
def test_approval_records_the_clients_name_on_the_grant() -> None:
    facade = Facade(resolver=FakeResolver(public_client(client_name="Claude Desktop")))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == "Claude Desktop"
    # The transaction carries it from /authorize, for the consent decision and its events.
    (txn,) = facade.txns.items.values()
    assert txn.client_name == "Claude Desktop"


def test_a_client_without_a_name_records_none() -> None:
    facade = Facade(resolver=FakeResolver(public_client(client_name=None)))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == ""


def test_the_recorded_name_is_bounded_and_has_no_control_or_bidi_characters() -> None:
    # CIMD documents cached, or records written, before the registration rules: cleaned again.
    hostile = "Ev\u202eil\u2066 \x07Agent\u200b\n" + "x" * 1000
    facade = Facade(resolver=FakeResolver(public_client(client_name=hostile)))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name.startswith("Evil Agent")
    assert len(grant.client_name) == MAX_NAME_LENGTH
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in grant.client_name)
