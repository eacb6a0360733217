"""Items declared once (functions/core/platform/items.py): the stored layout is exactly
docs/storage-schema.md's, and items written before an attribute existed read as it says."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError

from functions.core.clients.records import ClientRecord
from functions.core.clients.store import CLIENTS, ClientItem, client_item, dedupe_item, record_from_item
from functions.core.platform.ddb import ConditionFailed, from_item, transact
from functions.core.platform.errors import DependencyError
from functions.core.platform.items import ItemKind, stored
from functions.core.state.codes import CODES, AuthorizationCode
from functions.core.state.consent import CONSENTS, Consent, consent_key
from functions.core.state.grants import GRANTS, Grant
from functions.core.state.pending_requests import CALLBACK, PENDING_REQUESTS, PendingAuthorizationRequest
from functions.core.state.refresh_tokens import REFRESH_TOKENS, RefreshToken

S = lambda v: {"S": v}  # noqa: E731
N = lambda v: {"N": str(v)}  # noqa: E731
L = lambda *v: {"L": [{"S": x} for x in v]}  # noqa: E731

REQUEST = PendingAuthorizationRequest(
    txn_id="t1",
    client_id="c",
    redirect_uri="https://a/cb",
    state=None,
    code_challenge="x" * 43,
    resource="https://b/mcp",
    scopes=("notes:read", "notes:write"),
    created_at=100,
    expires_at=700,
)


def test_a_new_pending_request_stores_what_authorize_validated() -> None:
    assert PENDING_REQUESTS.to_item(REQUEST) == {
        "pk": S("TXN#t1"),
        "kind": S("txn"),
        "client_id": S("c"),
        "redirect_uri": S("https://a/cb"),
        "code_challenge": S("x" * 43),
        "resource": S("https://b/mcp"),
        "scopes": L("notes:read", "notes:write"),  # in order
        "created_at": N(100),
        "expires_at": N(700),
        "status": S("pending"),
        "ttl": N(700),
    }


def test_the_callback_fields_are_declared_as_such() -> None:
    """Every field set after creation (a default of None or empty, bar ``status``) is one the
    callback's conditional update writes: a new one cannot be silently left unstored."""
    later = [
        f.name
        for f in dataclasses.fields(PendingAuthorizationRequest)
        if f.default in (None, ()) and f.name != "status"
    ]
    assert PENDING_REQUESTS.phase_fields(CALLBACK) == tuple(later)
    assert len(later) == 8


def test_code_item() -> None:
    code = AuthorizationCode("h", "c", "https://a/cb", "x" * 43, "https://b/mcp", ("notes:read",), "g", b"ct", 9, 1, 61)
    assert CODES.to_item(code) == {
        "pk": S("CODE#h"),
        "kind": S("code"),
        "client_id": S("c"),
        "redirect_uri": S("https://a/cb"),
        "code_challenge": S("x" * 43),
        "resource": S("https://b/mcp"),
        "scopes": L("notes:read"),
        "grant_id": S("g"),
        "upstream_access": {"B": b"ct"},
        "access_expires_at": N(9),
        "created_at": N(1),
        "expires_at": N(61),
        "ttl": N(61),
    }
    assert CODES.from_item(from_item(CODES.to_item(code)), code_hash="h") == code


def test_grant_item_and_its_empty_values() -> None:
    full = Grant("o", "sub", "c", frozenset({"b", "a"}), 1, 2, "revoked", "u", "e", 3, "why", 4, b"up", "head", "Agent")
    assert GRANTS.to_item(full) == {
        "pk": S("GRANT#o"),
        "kind": S("grant"),
        "grant_id": S("o"),
        "sub": S("sub"),
        "client_id": S("c"),
        "scopes": L("a", "b"),  # sorted
        "created_at": N(1),
        "expires_at": N(2),
        "status": S("revoked"),
        "username": S("u"),
        "email": S("e"),
        "revoked_at": N(3),
        "revoked_reason": S("why"),
        "last_used_at": N(4),
        "upstream_refresh": {"B": b"up"},
        "refresh_head": S("head"),
        "client_name": S("Agent"),
        "ttl": N(2),
    }
    bare = Grant("o", "sub", "c", frozenset(), 1, 2)
    item = GRANTS.to_item(bare)
    # No empty list, no empty strings, no NULLs (docs/storage-schema.md).
    assert set(item) == {"pk", "kind", "grant_id", "sub", "client_id", "created_at", "expires_at", "status", "ttl"}
    assert GRANTS.from_item(from_item(item)) == bare


def test_refresh_token_item() -> None:
    token = RefreshToken("h", "g", "c", 1, 2, scopes=frozenset())
    assert REFRESH_TOKENS.to_item(token) == {
        "pk": S("RT#h"),
        "kind": S("refresh_token"),
        "grant_id": S("g"),
        "client_id": S("c"),
        "created_at": N(1),
        "expires_at": N(2),
        "status": S("active"),
        "scopes": {"L": []},  # an empty scope is kept: it is not "absent" (the grant's)
        "ttl": N(2),
    }
    counted = RefreshToken("h", "g", "c", 1, 2, "rotated", 5, frozenset({"x"}), 2, "next")
    item = REFRESH_TOKENS.to_item(counted)
    assert item["grace_mints"] == N(2) and item["successor"] == S("next") and item["rotated_at"] == N(5)
    assert REFRESH_TOKENS.from_item(from_item(item), token_hash="h") == counted


def test_consent_item_keeps_expiry_as_ttl_only() -> None:
    consent = Consent("sub", "https://agent.example/c.json", frozenset({"b", "a"}), 1, 2, 3, ("https://a/cb",))
    item = CONSENTS.to_item(consent)
    assert item == {
        "pk": S(consent_key("sub", "https://agent.example/c.json")),
        "kind": S("consent"),
        "sub": S("sub"),
        "client_id": S("https://agent.example/c.json"),
        "scopes": L("a", "b"),
        "created_at": N(1),
        "last_used_at": N(2),
        "ttl": N(3),
        "redirect_uris": L("https://a/cb"),
    }
    assert CONSENTS.from_item(from_item(item)) == consent


def test_client_items() -> None:
    record = ClientRecord(
        client_id="cid",
        kind="registered",
        redirect_uris=("https://a/cb",),
        token_endpoint_auth_method="none",
        metadata={"redirect_uris": ["https://a/cb"], "client_name": "Agent"},
        registration_access_token_hash="r",
        client_id_issued_at=5,
        last_used_at=6,
        dedupe_key="d",
        expires_at=7,
    )
    assert client_item(record) == {
        "pk": S("CLIENT#cid"),
        "kind": S("client"),
        "client_id": S("cid"),
        "metadata": S('{"redirect_uris":["https://a/cb"],"client_name":"Agent"}'),
        "token_endpoint_auth_method": S("none"),
        "registration_access_token_hash": S("r"),
        "dedupe_key": S("d"),
        "client_id_issued_at": N(5),
        "last_used_at": N(6),
        "ttl": N(7),
    }
    assert dedupe_item(record) == {"pk": S("DEDUPE#d"), "kind": S("dedupe"), "client_id": S("cid"), "ttl": N(7)}
    back = record_from_item(from_item(client_item(record)))
    assert back == dataclasses.replace(record, client_name="Agent", grant_types=("authorization_code",))


def test_items_of_earlier_versions_read_as_the_schema_says() -> None:
    """docs/storage-schema.md: absent attributes take their documented defaults; unknown states fail closed."""
    grant = GRANTS.from_item(
        {
            "grant_id": "o",
            "sub": "s",
            "client_id": "c",
            "created_at": Decimal(1),
            "expires_at": Decimal(2),
            "status": "?",
        }
    )
    assert (grant.status, grant.scopes, grant.username, grant.refresh_head) == ("revoked", frozenset(), "", None)
    assert grant.client_name == ""  # schema version 2: no name recorded, shown as the client id
    token = REFRESH_TOKENS.from_item(
        {"grant_id": "g", "client_id": "c", "created_at": 1, "expires_at": 2, "status": "weird"}, token_hash="h"
    )
    assert (token.status, token.scopes, token.grace_mints, token.successor) == ("revoked", None, 0, None)
    request = PENDING_REQUESTS.from_item(
        {k: v for k, v in from_item(PENDING_REQUESTS.to_item(REQUEST)).items() if k != "status"}, txn_id="t1"
    )
    assert request.status == "decided"  # an unreadable status never moves on
    assert request.client_name == ""  # a request made before the name was carried
    consent = CONSENTS.from_item(
        {"sub": "s", "client_id": "c", "scopes": [], "created_at": 1, "last_used_at": 1, "ttl": 2}
    )
    assert consent.redirect_uris == ()
    client = record_from_item(
        {"client_id": "cid", "metadata": "{}", "token_endpoint_auth_method": "client_secret_basic"}
    )
    assert (client.registration_access_token_hashes, client.client_id_issued_at, client.expires_at) == ((), 0, 0)
    with pytest.raises(KeyError):
        GRANTS.from_item({"sub": "s"})  # a malformed item is an error, never a half-read grant


def test_client_item_carries_every_stored_record_field() -> None:
    stored_fields = {f.name for f in dataclasses.fields(ClientItem)}
    assert stored_fields <= {f.name for f in dataclasses.fields(ClientRecord)}
    assert CLIENTS.attribute_name("expires_at") == "ttl"


def test_a_declaration_the_mapping_cannot_store_fails_at_import() -> None:
    @dataclass(frozen=True)
    class Floaty:
        x: float = stored()

    with pytest.raises(TypeError, match="no DynamoDB mapping"):
        ItemKind(Floaty, kind="f", key=lambda f: "F#")

    @dataclass(frozen=True)
    class Open:
        status: Literal["a", "b"] = stored()

    with pytest.raises(TypeError, match="unknown"):
        ItemKind(Open, kind="o", key=lambda o: "O#")


class _Client:
    def __init__(self, error: ClientError | None) -> None:
        self.error = error

    def transact_write_items(self, **_: Any) -> None:
        if self.error is not None:
            raise self.error


def _cancelled(*reasons: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
        "TransactWriteItems",
    )


class _Second(ConditionFailed):
    pass


def test_one_decoder_for_cancelled_transactions() -> None:
    """The first listed loser whose condition failed names the answer; anything else is a 503."""
    ok = "None"
    failed = "ConditionalCheckFailed"
    with pytest.raises(_Second):
        transact(_Client(_cancelled(failed, failed)), [{}, {}], "t", [(1, _Second)])
    with pytest.raises(ConditionFailed) as caught:
        transact(_Client(_cancelled(failed, ok)), [{}, {}], "t", [(1, _Second)])
    assert type(caught.value) is ConditionFailed
    with pytest.raises(DependencyError):  # a conflict, not a decision: safe to retry
        transact(_Client(_cancelled(ok, "TransactionConflict")), [{}, {}], "t", [(1, _Second)])
    with pytest.raises(DependencyError):
        transact(_Client(ClientError({"Error": {"Code": "ThrottlingException"}}, "x")), [{}], "t", [])
    transact(_Client(None), [{}], "t", [])
