"""Deprovisioning: the directory's decisions reach the grants, by event and by reconciliation.

A user disabled, deleted or signed out globally in Cognito loses every grant; a user removed
from a group keeps each grant narrowed to what the remaining groups allow
(``SCOPE_GROUP_CEILINGS``), so the withdrawn scopes stop working at ``/mcp`` within
``GRANT_CACHE_SECONDS`` although the current access token still names them (``/mcp`` uses
token scopes ∩ grant scopes). Re-enabling a user, or adding them back to a group, restores
nothing: revoked grants stay revoked and narrowed grants stay narrow; the person authorizes
the agent again (RFC 6749 section 10.2: consent is not assumed after access was taken back).

Two ways in, one code path (:class:`Deprovisioner`):

* events: the CloudTrail record of a Cognito admin call, as EventBridge delivers it
  (``AdminDisableUser``, ``AdminDeleteUser``, ``AdminUserGlobalSignOut``,
  ``AdminRemoveUserFromGroup``); an event that does not say which user (Cognito may hide the
  username) runs a full reconciliation instead;
* reconciliation (the scheduled backstop in AWS, the poller of ``make dev``): every user who
  holds an active grant is looked up in the pool, and their grants are made to agree.

Cost of one reconciliation run (README, "Deprovisioning"): one Scan of the ``by_user`` index
(never of the table, never on a request path), which reads each grant and consent projection
once (INCLUDE projection, about 300 bytes an item: eventually consistent reads of 4 KB cost
half a read unit, so about 1 read unit per 27 items), plus two Cognito reads
(``AdminGetUser``, ``AdminListGroupsForUser``) per distinct user holding an active grant.
Global sign-out leaves no state in the pool that a reconciliation could see: it is handled by
the event path only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from functions.core.cognito.directory import CognitoDirectory, DirectoryUser
from functions.core.oauth.scopes import within_ceilings
from functions.core.platform.audit import audit
from functions.core.platform.ddb import DynamoTable, dependency_call, from_item
from functions.core.platform.errors import DependencyError
from functions.core.platform.topology import GRANTS_BY_USER
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grants import GRANT_PREFIX, Grant, GrantReader

# The Cognito admin calls that end or narrow access, as CloudTrail names them.
REVOKING_CALLS: Final[Mapping[str, str]] = {
    "AdminDisableUser": "user_disabled",
    "AdminDeleteUser": "user_deleted",
    "AdminUserGlobalSignOut": "user_signed_out",
}
NARROWING_CALLS: Final = frozenset({"AdminRemoveUserFromGroup"})
COGNITO_EVENT_SOURCE: Final = "cognito-idp.amazonaws.com"
# What Cognito writes into CloudTrail in place of a private field.
HIDDEN_PREFIX: Final = "HIDDEN"
# Attempts at a narrowing whose conditional write lost to a concurrent change of the grant.
NARROW_ATTEMPTS: Final = 3

Verdict = Literal["kept", "narrowed", "revoked"]


@dataclass(frozen=True)
class Reconciled:
    """What one run did: users looked up, grants revoked and narrowed (counts)."""

    users: int = 0
    revoked: int = 0
    narrowed: int = 0

    def __add__(self, other: Reconciled) -> Reconciled:
        return Reconciled(self.users + other.users, self.revoked + other.revoked, self.narrowed + other.narrowed)


class GrantScopes(DynamoTable):
    """The two grants-table operations only deprovisioning needs: narrow a grant, list grant holders."""

    def narrow(self, grant: Grant, scopes: frozenset[str]) -> bool:
        """Set an active grant's ``scopes`` to ``scopes`` if they are still ``grant.scopes``.

        A conditional write on the scopes read (never read-then-write), so a concurrent change
        is never overwritten: False when the grant changed, is gone or is no longer active.
        Raises ``DependencyError`` when DynamoDB fails.
        """
        names: dict[str, str] = {"#s": "status", "#sc": "scopes"}
        values: dict[str, Any] = {":active": {"S": "active"}}
        if grant.scopes:
            condition = "attribute_exists(pk) AND #s = :active AND #sc = :old"
            values[":old"] = {"L": [{"S": s} for s in sorted(grant.scopes)]}
        else:
            condition = "attribute_exists(pk) AND #s = :active AND attribute_not_exists(#sc)"
        if scopes:
            update = "SET #sc = :new"
            values[":new"] = {"L": [{"S": s} for s in sorted(scopes)]}
        else:
            update = "REMOVE #sc"  # the grants table stores no empty scope list
        return self._update_if(
            GRANT_PREFIX + grant.grant_id,
            "narrow grant",
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def holders(self) -> Iterator[tuple[str, str]]:
        """``(sub, username)`` of every active grant, by paging a Scan of the ``by_user`` index.

        For the background reconciliation only (cost in the module docstring). Pairs repeat
        when a user holds several grants. Raises ``DependencyError`` when DynamoDB fails.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GRANTS_BY_USER.name,
            "ProjectionExpression": "#sub, username",
            "FilterExpression": "#k = :grant AND #s = :active",
            "ExpressionAttributeNames": {"#sub": "sub", "#k": "kind", "#s": "status"},
            "ExpressionAttributeValues": {":grant": {"S": "grant"}, ":active": {"S": "active"}},
        }
        while True:
            with dependency_call("scan by_user"):
                page = self._ddb.scan(**request)
            for raw in page.get("Items", []):
                item = from_item(raw)
                yield str(item["sub"]), str(item.get("username", ""))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Deprovisioner:
    """Makes a user's grants agree with the pool (revoke or narrow); never widens one."""

    def __init__(
        self,
        *,
        admin: GrantAdministration,
        grants: GrantReader,
        scopes: GrantScopes,
        directory: CognitoDirectory,
        user_pool_id: str,
        ceilings: Mapping[str, tuple[str, ...]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._admin, self._grants, self._scopes = admin, grants, scopes
        self._directory, self._pool, self._ceilings, self._clock = directory, user_pool_id, ceilings, clock

    def reconcile_user(self, sub: str, username: str) -> Reconciled:
        """Look ``username`` (or ``sub``) up in the pool and make the grants of ``sub`` agree.

        Gone, or the name now belongs to another person (a different ``sub``): every grant is
        revoked (``user_deleted``); disabled: revoked (``user_disabled``); enabled: each active
        grant narrowed to the ceilings of the user's current groups. Raises ``DependencyError``
        (DynamoDB, KMS, Cognito); a retry finishes the rest.
        """
        user = self._directory.user(username or sub)
        if user is None or user.sub != sub:
            return self._revoke(sub, "user_deleted")
        if not user.enabled:
            return self._revoke(sub, "user_disabled")
        narrowed = sum(1 for grant in self._admin.active_grants_of_user(sub) if self._narrow(grant.grant_id, user))
        return Reconciled(users=1, narrowed=narrowed)

    def reconcile_all(self) -> Reconciled:
        """One reconciliation run over every user holding an active grant (the backstop).

        Raises ``DependencyError`` at the first failure; the next run starts over.
        """
        done = Reconciled()
        seen: set[str] = set()
        for sub, username in self._scopes.holders():
            if sub not in seen:
                seen.add(sub)
                done += self.reconcile_user(sub, username)
        return done

    def handle_event(self, detail: Mapping[str, Any]) -> Reconciled:
        """Act on one CloudTrail record of a Cognito call (EventBridge ``detail``).

        Calls on other pools, failed calls (``errorCode``) and other calls are ignored. A
        revoking call names the user by ``additionalEventData.sub`` or by an unhidden
        ``requestParameters.username``; without either, a full reconciliation runs. Raises
        ``DependencyError``; EventBridge retries the invocation.
        """
        name = str(detail.get("eventName", ""))
        params = detail.get("requestParameters") or {}
        if (
            detail.get("eventSource") != COGNITO_EVENT_SOURCE
            or detail.get("errorCode")
            or params.get("userPoolId") != self._pool
            or (name not in REVOKING_CALLS and name not in NARROWING_CALLS)
        ):
            return Reconciled()
        extra = detail.get("additionalEventData") or {}
        sub = str(extra.get("sub", "") or "")
        username = str(params.get("username", "") or "")
        if username.startswith(HIDDEN_PREFIX):
            username = ""
        if name in REVOKING_CALLS:
            if not sub and username:
                user = self._directory.user(username)  # a deleted user cannot be found any more
                sub = user.sub if user is not None else ""
            if not sub:
                return self.reconcile_all()
            # Unconditional: the call happened; a re-enabled user gets nothing back.
            return self._revoke(sub, REVOKING_CALLS[name])
        user = self._directory.user(username or sub) if (username or sub) else None
        if user is None:
            return self.reconcile_all()
        return self.reconcile_user(user.sub, user.username)

    def _revoke(self, sub: str, reason: str) -> Reconciled:
        revoked = self._admin.revoke_user(sub, actor="system", reason=reason)
        return Reconciled(users=1, revoked=len(revoked.grant_ids))

    def _narrow(self, grant_id: str, user: DirectoryUser) -> bool:
        for _ in range(NARROW_ATTEMPTS):
            grant = self._grants.get(grant_id)  # strongly consistent: the index may lag
            if grant is None or not grant.is_active(self._clock()):
                return False
            allowed = frozenset(within_ceilings(grant.scopes, user.groups, self._ceilings))
            if allowed == grant.scopes:
                return False
            if self._scopes.narrow(grant, allowed):
                audit(
                    "grant.narrowed",
                    actor="system",
                    reason="group_removed",
                    sub=grant.sub,
                    username=grant.username or None,
                    client_id=grant.client_id,
                    grant_id=grant.grant_id,
                    scopes=grant.scopes - allowed,
                )
                return True
        # Fail closed: never leave a grant wider than the groups allow; the run is retried.
        raise DependencyError(f"grant {grant_id} kept changing while being narrowed")
