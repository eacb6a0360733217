"""Pending authorization requests (TXN#), authorization codes (CODE#), RT#, CONSENT# and
grants: DynamoDB (moto, in process) and the in-memory twins (tests/fakes/state.py) behave the
same on the same scenarios; every transition is conditional on the previous state."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from functions.core.platform.ddb import ConditionFailed
from functions.core.state.codes import AuthorizationCode, CodeSpent, DynamoAuthorizationCodeRepository, Redemption
from functions.core.state.consent import Consent, DynamoConsentRepository, consent_key
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.pending_requests import (
    CALLBACK,
    PENDING_REQUESTS,
    Approval,
    DuplicateGrant,
    DynamoPendingRequestRepository,
    PendingAuthorizationRequest,
)
from functions.core.state.refresh_tokens import (
    DynamoRefreshTokenRepository,
    GrantInactive,
    RefreshToken,
    SessionUpdate,
    TokenSpent,
)
from tests.fakes.dynamodb import in_process_tables
from tests.fakes.state import (
    InMemoryCodeRepository,
    InMemoryConsentRepository,
    InMemoryGrantRepository,
    InMemoryPendingRequestRepository,
    InMemoryRefreshTokenRepository,
)
from tests.helpers import grant

NOW = int(time.time())


@contextmanager
def dynamo_repositories(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Every repository on moto's in-process DynamoDB, plus the raw client as ``ddb``."""
    with in_process_tables(monkeypatch, "artefacts", "grants") as ddb:
        yield {
            "txns": DynamoPendingRequestRepository("artefacts", ddb, grants_table="grants"),
            "codes": DynamoAuthorizationCodeRepository("artefacts", ddb, grants_table="grants"),
            "rts": DynamoRefreshTokenRepository("grants", ddb),
            "consents": DynamoConsentRepository("grants", ddb),
            "grants": DynamoGrantRepository("grants", ddb),
            "ddb": ddb,
        }


@pytest.fixture(params=["memory", "dynamo"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    if request.param == "memory":
        grants = InMemoryGrantRepository()
        txns, codes, rts, consents = (
            InMemoryPendingRequestRepository(),
            InMemoryCodeRepository(),
            InMemoryRefreshTokenRepository(grants),
            InMemoryConsentRepository(),
        )
        codes.link(grants, rts)
        txns.link(codes, grants, consents)
        yield {"txns": txns, "codes": codes, "rts": rts, "consents": consents, "grants": grants}
        return
    with dynamo_repositories(monkeypatch) as repositories:
        yield repositories


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The DynamoDB backend alone, for checks of the stored item layout."""
    with dynamo_repositories(monkeypatch) as repositories:
        yield repositories


def txn(**kw: Any) -> PendingAuthorizationRequest:
    values: dict[str, Any] = {
        "txn_id": "t1",
        "client_id": "c",
        "redirect_uri": "https://a/cb",
        "state": "s",
        "code_challenge": "x" * 43,
        "resource": "https://b/mcp",
        "scopes": ("notes:read",),
        "created_at": NOW,
        "expires_at": NOW + 600,
    }
    values.update(kw)
    return PendingAuthorizationRequest(**values)


def signed_in(**kw: Any) -> PendingAuthorizationRequest:
    """``txn()`` as the Cognito callback fills it in."""
    values: dict[str, Any] = {
        "sub": "sub",
        "username": "alice",
        "email": "a@example.com",
        "groups": ("editors",),
        "origin_jti": "origin",
        "allowed_scopes": ("notes:read",),
        "upstream_tokens": b"\x01\x02",
        "csrf_hash": "h",
        "status": "authenticated",
    }
    values.update(kw)
    return txn(**values)


def test_txn_lifecycle(backend: dict[str, Any]) -> None:
    repo = backend["txns"]
    repo.create(txn(state=None))
    with pytest.raises(ConditionFailed):
        repo.create(txn())
    assert repo.get("t1") == txn(state=None)
    assert repo.get("nope") is None
    with pytest.raises(ConditionFailed):
        repo.decide("t1", expected="authenticated", csrf_hash=None, now=NOW)  # not yet authenticated
    repo.authenticate(signed_in(), NOW)
    with pytest.raises(ConditionFailed):
        repo.authenticate(signed_in(), NOW)  # the callback runs once
    got = repo.get("t1")
    assert got.status == "authenticated" and got.upstream_tokens == b"\x01\x02" and got.groups == ("editors",)
    assert (got.sub, got.username, got.email, got.origin_jti, got.csrf_hash) == (
        "sub",
        "alice",
        "a@example.com",
        "origin",
        "h",
    )
    with pytest.raises(ConditionFailed):
        repo.decide("t1", expected="authenticated", csrf_hash="other", now=NOW)  # CSRF hash is a condition
    repo.decide("t1", expected="authenticated", csrf_hash="h", now=NOW)
    with pytest.raises(ConditionFailed):
        repo.decide("t1", expected="authenticated", csrf_hash="h", now=NOW)  # decided once
    assert repo.get("t1").status == "decided"


def test_expired_txn_cannot_move(backend: dict[str, Any]) -> None:
    repo = backend["txns"]
    repo.create(txn(expires_at=NOW - 1))
    with pytest.raises(ConditionFailed):
        repo.authenticate(signed_in(), NOW)
    with pytest.raises(ConditionFailed):
        repo.decide("t1", expected="pending", csrf_hash=None, now=NOW)


def _code(**kw: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "code_hash": "h1",
        "client_id": "c",
        "redirect_uri": "https://a/cb",
        "code_challenge": "x" * 43,
        "resource": "https://b/mcp",
        "scopes": ("notes:read",),
        "grant_id": "origin-alice",
        "upstream_access": b"ct",
        "access_expires_at": NOW + 3600,
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(kw)
    return AuthorizationCode(**values)


def test_code_is_redeemed_once_with_its_grant_and_refresh_token(backend: dict[str, Any]) -> None:
    codes, grants, rts = backend["codes"], backend["grants"], backend["rts"]
    grants.create(grant(status="pending", expires_at=NOW + 60))
    code = _code()
    codes.create(code)
    with pytest.raises(ConditionFailed):
        codes.create(code)
    assert codes.get("h1") == code
    rt = RefreshToken("rt1", "origin-alice", "c", NOW, NOW + 86400)
    codes.redeem(code, Redemption(NOW, NOW + 30, b"answer", NOW + 86400, rt))
    got = codes.get("h1")
    assert (got.used_at, got.retry_until, got.answer) == (NOW, NOW + 30, b"answer")
    active = grants.get("origin-alice")
    assert (active.status, active.expires_at, active.refresh_head) == ("active", NOW + 86400, "rt1")
    assert rts.get("rt1") == rt
    rt2 = RefreshToken("rt2", "origin-alice", "c", NOW, NOW + 86400)
    with pytest.raises(CodeSpent):
        codes.redeem(code, Redemption(NOW + 1, NOW + 31, None, NOW + 86400, rt2))
    assert rts.get("rt2") is None  # nothing written when the redemption loses
    with pytest.raises(CodeSpent):
        codes.redeem(_code(code_hash="missing"), Redemption(NOW, NOW, None, NOW + 1, None))


@pytest.mark.parametrize("status", ["revoked", "expired"])
def test_a_code_of_an_inactive_grant_is_not_spent(backend: dict[str, Any], status: str) -> None:
    codes, grants, rts = backend["codes"], backend["grants"], backend["rts"]
    pending = grant(status="pending", expires_at=NOW + (60 if status == "revoked" else -1))
    grants.create(pending)
    if status == "revoked":
        assert grants.revoke("origin-alice", "test", NOW)
    codes.create(_code())
    with pytest.raises(GrantInactive):
        codes.redeem(_code(), Redemption(NOW, NOW + 30, None, NOW + 86400, RefreshToken("r", "g", "c", NOW, NOW + 9)))
    assert codes.get("h1").used_at is None and rts.get("r") is None


def test_approval_is_one_transaction(backend: dict[str, Any]) -> None:
    txns, codes, grants, consents = backend["txns"], backend["codes"], backend["grants"], backend["consents"]
    txns.create(txn())
    txns.authenticate(signed_in(), NOW)
    consent = Consent("sub", "c", frozenset({"notes:read"}), NOW, NOW, NOW + 100, ("https://a/cb",))
    approval = Approval(grant(status="pending", expires_at=NOW + 60), _code(), consent)
    with pytest.raises(ConditionFailed):  # wrong CSRF: nothing written
        txns.approve("t1", approval, expected="authenticated", csrf_hash="other", now=NOW)
    assert grants.get("origin-alice") is None and codes.get("h1") is None and consents.get("sub", "c") is None
    txns.approve("t1", approval, expected="authenticated", csrf_hash="h", now=NOW)
    assert txns.get("t1").status == "decided" and grants.get("origin-alice").status == "pending"
    assert codes.get("h1") == _code() and consents.get("sub", "c") == consent
    with pytest.raises(ConditionFailed):  # decided once
        txns.approve("t1", approval, expected="authenticated", csrf_hash="h", now=NOW)
    txns.create(txn(txn_id="t2"))
    with pytest.raises(DuplicateGrant):  # the same upstream session twice
        txns.approve("t2", replace(approval, code=_code(code_hash="h2")), expected="pending", csrf_hash=None, now=NOW)
    assert txns.get("t2").status == "pending" and codes.get("h2") is None


def test_revocation_marks_and_forgets(backend: dict[str, Any]) -> None:
    grants, rts = backend["grants"], backend["rts"]
    grants.create(grant(status="pending", upstream_refresh=b"ct"))
    rts.create(RefreshToken("m1", "origin-alice", "c", NOW, NOW + 100))
    grants.forget_upstream("origin-alice")  # only a revoked grant forgets its upstream token
    assert grants.get("origin-alice").upstream_refresh == b"ct"
    assert grants.revoke("origin-alice", "test", NOW) and not grants.revoke("origin-alice", "test", NOW)
    assert grants.get("origin-alice").upstream_revocation_pending
    grants.forget_upstream("origin-alice")
    got = grants.get("origin-alice")
    assert got.status == "revoked" and got.upstream_refresh is None and not got.upstream_revocation_pending
    rts.mark_revoked("m1", NOW)
    rts.mark_revoked("missing", NOW)  # idempotent, creates nothing
    assert rts.get("m1").status == "revoked" and rts.get("missing") is None


def test_refresh_token_rotation_is_atomic(backend: dict[str, Any]) -> None:
    repo = backend["rts"]
    first = RefreshToken("r1", "g", "c", NOW, NOW + 100)
    repo.create(first)
    assert repo.get("r1") == first
    second = RefreshToken("r2", "g", "c", NOW, NOW + 100)
    repo.rotate("r1", second, NOW + 5)
    assert repo.get("r1").status == "rotated" and repo.get("r1").rotated_at == NOW + 5
    assert repo.get("r2") == second
    with pytest.raises(ConditionFailed):
        repo.rotate("r1", RefreshToken("r3", "g", "c", NOW, NOW + 100), NOW + 6)
    assert repo.get("r3") is None  # nothing written when the rotation loses
    with pytest.raises(ConditionFailed):
        repo.rotate("missing", RefreshToken("r4", "g", "c", NOW, NOW + 100), NOW)


def test_grace_reissues_are_conditional_bounded_and_write_no_token(backend: dict[str, Any]) -> None:
    repo = backend["rts"]
    repo.create(RefreshToken("g1", "g", "c", NOW, NOW + 100))
    with pytest.raises(TokenSpent):  # an active token is rotated, not answered again
        repo.reissue_in_grace("g1", successor="g2", rotated_since=0, max_mints=2, session=None)
    repo.rotate("g1", RefreshToken("g2", "g", "c", NOW, NOW + 100), NOW + 5)
    assert repo.get("g1").successor == "g2"
    with pytest.raises(TokenSpent):  # rotated before the grace began
        repo.reissue_in_grace("g1", successor="g2", rotated_since=NOW + 6, max_mints=2, session=None)
    with pytest.raises(TokenSpent):  # another successor than the one it was rotated to
        repo.reissue_in_grace("g1", successor="other", rotated_since=NOW, max_mints=2, session=None)
    for _ in range(2):
        repo.reissue_in_grace("g1", successor="g2", rotated_since=NOW, max_mints=2, session=None)
    assert repo.get("g1").grace_mints == 2 and repo.get("g2").status == "active"
    with pytest.raises(TokenSpent):  # the bound
        repo.reissue_in_grace("g1", successor="g2", rotated_since=NOW, max_mints=2, session=None)
    assert repo.get("g1").grace_mints == 2


def test_rotation_records_the_session_on_an_active_grant_only(backend: dict[str, Any]) -> None:
    repo, grants = backend["rts"], backend["grants"]
    grants.create(grant(upstream_refresh=b"old"))
    repo.create(RefreshToken("s1", "origin-alice", "c", NOW, NOW + 100))
    session = SessionUpdate("origin-alice", frozenset({"notes:read"}), NOW + 1)
    repo.rotate("s1", RefreshToken("s2", "origin-alice", "c", NOW, NOW + 100), NOW + 1, session)
    got = grants.get("origin-alice")
    assert got.scopes == {"notes:read"} and got.last_used_at == NOW + 1 and got.upstream_refresh == b"old"
    wider = SessionUpdate("origin-alice", frozenset({"notes:read", "notes:write"}), NOW + 2, b"new")
    repo.reissue_in_grace("s1", successor="s2", rotated_since=NOW, max_mints=3, session=wider)
    got = grants.get("origin-alice")
    assert got.scopes == {"notes:read", "notes:write"} and got.upstream_refresh == b"new"
    assert got.refresh_head == "s2"  # a grace answer does not move the chain head
    grants.revoke("origin-alice", "test", NOW + 3)
    with pytest.raises(GrantInactive):
        repo.rotate("s2", RefreshToken("s4", "origin-alice", "c", NOW, NOW + 100), NOW + 3, session)
    assert repo.get("s2").status == "active" and repo.get("s4") is None  # nothing written
    assert grants.get("origin-alice").status == "revoked"


def test_consent_round_trip_and_delete(backend: dict[str, Any]) -> None:
    repo = backend["consents"]
    consent = Consent("sub", "https://agent.example/client.json", frozenset({"notes:read"}), NOW, NOW, NOW + 100)
    assert repo.get("sub", consent.client_id) is None
    repo.put(consent)
    assert repo.get("sub", consent.client_id) == consent
    assert consent.covers({"notes:read"}, NOW) and not consent.covers({"notes:write"}, NOW)
    assert not consent.covers({"notes:read"}, NOW + 100)
    repo.delete("sub", consent.client_id)
    assert repo.get("sub", consent.client_id) is None
    assert consent_key("sub", consent.client_id).startswith("CONSENT#sub#") and "https" not in consent_key(
        "s", "https://x"
    )


def test_grant_touch_and_upstream_refresh(backend: dict[str, Any]) -> None:
    repo = backend["grants"]
    repo.create(grant(upstream_refresh=b"old"))
    repo.touch("origin-alice", NOW + 1)
    got = repo.get("origin-alice")
    assert got.last_used_at == NOW + 1 and got.upstream_refresh == b"old"
    repo.touch("origin-alice", NOW + 2, b"new")
    assert repo.get("origin-alice").upstream_refresh == b"new"
    repo.revoke("origin-alice", "test", NOW)
    with pytest.raises(ConditionFailed):
        repo.touch("origin-alice", NOW + 3)  # a revoked grant is never renewed


def test_dynamo_items_follow_the_schema(dynamo: dict[str, Any]) -> None:
    ddb = dynamo["ddb"]
    dynamo["txns"].create(txn())
    dynamo["rts"].create(RefreshToken("r1", "g", "c", NOW, NOW + 100))
    dynamo["grants"].create(replace(grant(), upstream_refresh=b"ct"))
    item = ddb.get_item(TableName="artefacts", Key={"pk": {"S": "TXN#t1"}})["Item"]
    assert item["kind"] == {"S": "txn"} and item["ttl"] == {"N": str(NOW + 600)}
    rt = ddb.get_item(TableName="grants", Key={"pk": {"S": "RT#r1"}})["Item"]
    assert rt["kind"] == {"S": "refresh_token"} and rt["ttl"] == {"N": str(NOW + 100)}
    g = ddb.get_item(TableName="grants", Key={"pk": {"S": "GRANT#origin-alice"}})["Item"]
    assert g["upstream_refresh"] == {"B": b"ct"}


def _distinct(name: str, hint: Any) -> Any:
    """A value of ``hint``'s type that no default equals, derived from the field name."""
    args = typing.get_args(hint)
    if type(None) in args:
        hint = next(a for a in args if a is not type(None))
    if hint is bytes:
        return name.encode()
    if typing.get_origin(hint) is tuple:
        return (name, name + "-2")
    return name


def test_authenticate_stores_every_callback_field(backend: dict[str, Any]) -> None:
    """Whatever fields the callback declares, each is written and read back, on both backends."""
    hints = typing.get_type_hints(PendingAuthorizationRequest)
    filled = {f: _distinct(f, hints[f]) for f in PENDING_REQUESTS.phase_fields(CALLBACK)}
    repo = backend["txns"]
    repo.create(txn())
    repo.authenticate(txn(status="authenticated", **filled), NOW)
    assert repo.get("t1") == txn(status="authenticated", **filled)


def test_authenticate_changes_nothing_but_the_callback_fields(backend: dict[str, Any]) -> None:
    repo = backend["txns"]
    repo.create(txn())
    repo.authenticate(signed_in(client_id="other", redirect_uri="https://evil/cb", scopes=("x",)), NOW)
    got = repo.get("t1")
    assert (got.client_id, got.redirect_uri, got.scopes) == ("c", "https://a/cb", ("notes:read",))
