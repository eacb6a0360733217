"""Deprovisioning against moto: real Cognito users and groups, real grants table and indexes.

The reconciliation (the AWS backstop and the `make dev` poller) and the CloudTrail event path
(AdminDisableUser, AdminDeleteUser, AdminUserGlobalSignOut, AdminRemoveUserFromGroup).
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from functions.core.cognito.directory import CognitoDirectory
from functions.core.cognito.token_cipher import grant_context
from functions.core.state import reconciliation
from functions.core.state.consent import Consent, DynamoConsentRepository
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grant_index import DynamoGrantIndex
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.reconciliation import Deprovisioner, GrantScopes
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
from functions.core.state.revocation import GrantRevoker
from local.config import GRANTS_TABLE, REGION, demo_users, scope_group_ceilings
from tests.facade_fakes import FakeCipher, FakeCognito
from tests.helpers import grant
from tests.integration.conftest import MotoStack

EDITORS = next(g for user in demo_users() for g in user.groups)  # the group notes:write needs


class Fixture:
    def __init__(self, stack: MotoStack) -> None:
        self.pool = stack.seeded.user_pool_id
        self.idp = boto3.client("cognito-idp", region_name=REGION)
        self.grants = DynamoGrantRepository(GRANTS_TABLE)
        self.consents = DynamoConsentRepository(GRANTS_TABLE)
        self.cipher, self.cognito = FakeCipher(), FakeCognito()
        revoker = GrantRevoker(
            grants=self.grants,
            refresh_tokens=DynamoRefreshTokenRepository(GRANTS_TABLE),
            consents=self.consents,
            cipher=self.cipher,
            cognito=self.cognito,
        )
        admin = GrantAdministration(index=DynamoGrantIndex(GRANTS_TABLE), revoker=revoker, consents=self.consents)
        self.deprovisioner = Deprovisioner(
            admin=admin,
            grants=self.grants,
            scopes=GrantScopes(GRANTS_TABLE),
            directory=CognitoDirectory(self.pool),
            user_pool_id=self.pool,
            ceilings=scope_group_ceilings(),
        )

    def user(self, *groups: str) -> tuple[str, str]:
        """A new pool user in ``groups``: (username, sub)."""
        username = f"user-{uuid.uuid4().hex[:10]}@example.com"
        created = self.idp.admin_create_user(
            UserPoolId=self.pool,
            Username=username,
            UserAttributes=[{"Name": "email", "Value": username}],
            MessageAction="SUPPRESS",
        )
        for group in groups:
            self.idp.admin_add_user_to_group(UserPoolId=self.pool, Username=username, GroupName=group)
        sub = next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")
        return username, sub

    def connect(self, username: str, sub: str, scopes: tuple[str, ...] = ("notes:read", "notes:write")) -> str:
        grant_id = f"origin-{uuid.uuid4().hex[:10]}"
        upstream = self.cipher.encrypt(f"cognito-rt-{grant_id}".encode(), grant_context(grant_id))
        self.grants.create(grant(grant_id, sub, scopes, username=username, upstream_refresh=upstream))
        self.consents.put(Consent(sub, "agent-1", frozenset(scopes), 1, 1, 2**31, ("https://a.example/cb",)))
        return grant_id

    def status(self, grant_id: str) -> tuple[str, str | None, frozenset[str]]:
        stored = self.grants.get(grant_id)
        assert stored is not None
        return stored.status, stored.revoked_reason, stored.scopes

    def event(self, name: str, username: str, **extra: Any) -> dict[str, Any]:
        return {
            "eventSource": "cognito-idp.amazonaws.com",
            "eventName": name,
            "requestParameters": {"userPoolId": self.pool, "username": username},
            **extra,
        }


@pytest.fixture
def fx(moto_stack: MotoStack) -> Fixture:
    return Fixture(moto_stack)


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(reconciliation, "audit", lambda action, **fields: events.append({"action": action, **fields}))
    return events


BOTH = frozenset({"notes:read", "notes:write"})


def test_reconciliation_revokes_disabled_and_deleted_users_and_narrows_group_removal(
    fx: Fixture, audited: list[dict[str, Any]]
) -> None:
    kept_user, disabled_user, deleted_user, moved_user = (fx.user(EDITORS) for _ in range(4))
    kept, disabled, deleted, moved = (fx.connect(*u) for u in (kept_user, disabled_user, deleted_user, moved_user))
    fx.idp.admin_disable_user(UserPoolId=fx.pool, Username=disabled_user[0])
    fx.idp.admin_delete_user(UserPoolId=fx.pool, Username=deleted_user[0])
    fx.idp.admin_remove_user_from_group(UserPoolId=fx.pool, Username=moved_user[0], GroupName=EDITORS)

    done = fx.deprovisioner.reconcile_all()

    assert done.revoked >= 2 and done.narrowed >= 1
    assert fx.status(kept) == ("active", None, BOTH)
    assert fx.status(disabled)[:2] == ("revoked", "user_disabled")
    assert fx.status(deleted)[:2] == ("revoked", "user_deleted")
    # Narrowed, not revoked: the withdrawn scope only.
    assert fx.status(moved) == ("active", None, frozenset({"notes:read"}))
    assert f"cognito-rt-{disabled}" in fx.cognito.revoked  # Cognito's refresh token revoked too
    assert fx.consents.get(disabled_user[1], "agent-1") is None  # the consent page comes back
    [narrowed] = [e for e in audited if e["action"] == "grant.narrowed"]
    assert narrowed["grant_id"] == moved and narrowed["scopes"] == frozenset({"notes:write"})
    assert narrowed["actor"] == "system" and narrowed["reason"] == "group_removed"

    # Re-enabling and re-adding bring nothing back; a second run changes nothing.
    fx.idp.admin_enable_user(UserPoolId=fx.pool, Username=disabled_user[0])
    fx.idp.admin_add_user_to_group(UserPoolId=fx.pool, Username=moved_user[0], GroupName=EDITORS)
    fx.deprovisioner.reconcile_all()
    assert fx.status(disabled)[0] == "revoked"
    assert fx.status(moved) == ("active", None, frozenset({"notes:read"}))


def test_a_username_taken_by_someone_else_revokes_the_old_grants(fx: Fixture) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    fx.idp.admin_delete_user(UserPoolId=fx.pool, Username=username)
    fx.idp.admin_create_user(UserPoolId=fx.pool, Username=username, MessageAction="SUPPRESS")
    fx.idp.admin_add_user_to_group(UserPoolId=fx.pool, Username=username, GroupName=EDITORS)
    fx.deprovisioner.reconcile_user(sub, username)
    assert fx.status(grant_id)[:2] == ("revoked", "user_deleted")


@pytest.mark.parametrize(
    ("call", "reason"),
    [("AdminDisableUser", "user_disabled"), ("AdminUserGlobalSignOut", "user_signed_out")],
)
def test_a_revoking_event_revokes_even_if_the_user_looks_fine_now(fx: Fixture, call: str, reason: str) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    # The user is enabled when the event arrives (e.g. re-enabled at once): the call still counts.
    done = fx.deprovisioner.handle_event(fx.event(call, username))
    assert done.revoked == 1
    assert fx.status(grant_id)[:2] == ("revoked", reason)


def test_an_event_naming_the_sub_needs_no_lookup(fx: Fixture) -> None:
    username, sub = fx.user()
    grant_id = fx.connect(username, sub, ("notes:read",))
    fx.idp.admin_delete_user(UserPoolId=fx.pool, Username=username)
    hidden = fx.event("AdminDeleteUser", "HIDDEN_DUE_TO_SECURITY_REASONS", additionalEventData={"sub": sub})
    fx.deprovisioner.handle_event(hidden)
    assert fx.status(grant_id)[:2] == ("revoked", "user_deleted")


def test_an_event_that_hides_the_user_runs_a_full_reconciliation(fx: Fixture) -> None:
    username, sub = fx.user()
    grant_id = fx.connect(username, sub, ("notes:read",))
    fx.idp.admin_delete_user(UserPoolId=fx.pool, Username=username)
    fx.deprovisioner.handle_event(fx.event("AdminDeleteUser", "HIDDEN_DUE_TO_SECURITY_REASONS"))
    assert fx.status(grant_id)[:2] == ("revoked", "user_deleted")


def test_a_group_removal_event_narrows(fx: Fixture) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    fx.idp.admin_remove_user_from_group(UserPoolId=fx.pool, Username=username, GroupName=EDITORS)
    done = fx.deprovisioner.handle_event(fx.event("AdminRemoveUserFromGroup", username))
    assert done.narrowed == 1
    assert fx.status(grant_id) == ("active", None, frozenset({"notes:read"}))


@pytest.mark.parametrize(
    "change",
    [
        {"errorCode": "UserNotFoundException"},  # the call failed: nothing happened
        {"eventName": "AdminGetUser"},  # not a deprovisioning call
        {"eventSource": "s3.amazonaws.com"},
        {"requestParameters": {"userPoolId": "us-east-1_Another1", "username": "x"}},  # another pool
    ],
    ids=["failed-call", "other-call", "other-service", "other-pool"],
)
def test_other_events_change_nothing(fx: Fixture, change: dict[str, Any]) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    fx.idp.admin_disable_user(UserPoolId=fx.pool, Username=username)  # a reconciliation would revoke
    event = {**fx.event("AdminDisableUser", username), **change}
    assert fx.deprovisioner.handle_event(event).users == 0
    assert fx.status(grant_id)[0] == "active"


def test_narrowing_is_conditional_on_the_scopes_read(fx: Fixture) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    stale = grant(grant_id, sub, ("notes:read",))  # not what is stored
    assert not GrantScopes(GRANTS_TABLE).narrow(stale, frozenset())
    assert fx.status(grant_id)[2] == BOTH
    current = fx.grants.get(grant_id)
    assert current is not None
    assert GrantScopes(GRANTS_TABLE).narrow(current, frozenset())
    assert fx.status(grant_id) == ("active", None, frozenset())


def test_revoked_grants_are_not_narrowed(fx: Fixture) -> None:
    username, sub = fx.user(EDITORS)
    grant_id = fx.connect(username, sub)
    fx.grants.revoke(grant_id, "test", 1)
    revoked = fx.grants.get(grant_id)
    assert revoked is not None
    assert not GrantScopes(GRANTS_TABLE).narrow(revoked, frozenset({"notes:read"}))
