"""Bulk revocation by user and by client (moto): grants, chain heads, Cognito's refresh tokens, consents."""

from __future__ import annotations

import uuid

import pytest

from functions.core.cognito.token_cipher import grant_context
from functions.core.platform.errors import DependencyError
from functions.core.state.consent import Consent, DynamoConsentRepository
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grant_index import DynamoGrantIndex
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository, RefreshToken
from functions.core.state.revocation import GrantRevoker
from local.config import GRANTS_TABLE
from tests.facade_fakes import FakeCipher, FakeCognito
from tests.helpers import grant
from tests.integration.conftest import MotoStack


class Fixture:
    def __init__(self) -> None:
        self.grants = DynamoGrantRepository(GRANTS_TABLE)
        self.rts = DynamoRefreshTokenRepository(GRANTS_TABLE)
        self.consents = DynamoConsentRepository(GRANTS_TABLE)
        self.cipher, self.cognito = FakeCipher(), FakeCognito()
        revoker = GrantRevoker(
            grants=self.grants,
            refresh_tokens=self.rts,
            consents=self.consents,
            cipher=self.cipher,
            cognito=self.cognito,
        )
        self.admin = GrantAdministration(index=DynamoGrantIndex(GRANTS_TABLE), revoker=revoker, consents=self.consents)

    def connect(self, sub: str, client_id: str) -> str:
        """An active grant with a chain head and an upstream refresh token, and a remembered consent."""
        grant_id = f"origin-{uuid.uuid4().hex[:10]}"
        head = uuid.uuid4().hex * 2
        upstream = self.cipher.encrypt(f"cognito-rt-{grant_id}".encode(), grant_context(grant_id))
        self.grants.create(grant(grant_id, sub, client_id=client_id, refresh_head=head, upstream_refresh=upstream))
        self.rts.create(RefreshToken(head, grant_id, client_id, 0, 2**31, scopes=frozenset({"notes:read"})))
        self.consents.put(Consent(sub, client_id, frozenset({"notes:read"}), 1, 1, 2**31, ("https://a.example/cb",)))
        return grant_id


@pytest.fixture
def fx(moto_stack: MotoStack) -> Fixture:
    return Fixture()


def _new(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_revoking_a_user_ends_every_grant_upstream_token_and_consent(fx: Fixture) -> None:
    sub, other = _new("sub"), _new("sub")
    mine = {fx.connect(sub, _new("agent")), fx.connect(sub, _new("agent"))}
    theirs = fx.connect(other, _new("agent"))
    assert {g.grant_id for g in fx.admin.active_grants_of_user(sub)} == mine

    done = fx.admin.revoke_user(sub, actor="admin", reason="offboarded")

    assert set(done.grant_ids) == mine and done.consents_forgotten == 2
    for grant_id in mine:
        stored = fx.grants.get(grant_id)
        assert stored is not None and stored.status == "revoked" and stored.revoked_reason == "offboarded"
        assert stored.upstream_refresh is None  # revoked at Cognito, then forgotten
        assert fx.rts.get(stored.refresh_head or "") is not None
        assert fx.rts.get(stored.refresh_head or "").status == "revoked"  # type: ignore[union-attr]
    assert sorted(fx.cognito.revoked) == sorted(f"cognito-rt-{g}" for g in mine)
    assert fx.admin.active_grants_of_user(sub) == []
    assert DynamoGrantIndex(GRANTS_TABLE).consents_of_user(sub) == []
    assert fx.grants.get(theirs).status == "active"  # type: ignore[union-attr]
    # A retry finds nothing left to do and changes nothing.
    assert fx.admin.revoke_user(sub, actor="admin", reason="offboarded").grant_ids == ()


def test_revoking_a_client_ends_its_grants_for_every_user_only(fx: Fixture) -> None:
    client, other_client = _new("agent"), _new("agent")
    ours = {fx.connect(_new("sub"), client), fx.connect(_new("sub"), client)}
    kept = fx.connect(_new("sub"), other_client)

    done = fx.admin.revoke_client(client, actor="admin", reason="client_removed")

    assert set(done.grant_ids) == ours and done.consents_forgotten == 2
    assert fx.admin.active_grants_of_client(client) == []
    assert [g.grant_id for g in fx.admin.active_grants_of_client(other_client)] == [kept]


def test_revoking_one_grant_forgets_that_consent(fx: Fixture) -> None:
    sub, client = _new("sub"), _new("agent")
    grant_id = fx.connect(sub, client)
    [listed] = fx.admin.active_grants_of_user(sub)
    fx.admin.revoke_grant(listed, actor="user", reason="revoked_by_user")
    assert fx.grants.get(grant_id).status == "revoked"  # type: ignore[union-attr]
    assert fx.consents.get(sub, client) is None


def test_a_retry_after_cognito_failed_finishes_the_upstream_revocations(fx: Fixture) -> None:
    sub = _new("sub")
    grant_ids = {fx.connect(sub, _new("agent")), fx.connect(sub, _new("agent"))}
    fx.cognito.fail = True
    with pytest.raises(DependencyError):
        fx.admin.revoke_user(sub, actor="admin", reason="offboarded")
    fx.cognito.fail = False
    fx.admin.revoke_user(sub, actor="admin", reason="offboarded")
    for grant_id in grant_ids:
        stored = fx.grants.get(grant_id)
        assert stored is not None and stored.status == "revoked" and stored.upstream_refresh is None
    assert sorted(fx.cognito.revoked) == sorted(f"cognito-rt-{g}" for g in grant_ids)
