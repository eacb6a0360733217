"""In-memory twins of the state repositories (functions/core/state/), for tests.

Same conditional semantics as the DynamoDB repositories: every transition checks the
previous state, and multi-item writes (an approval, a redemption, a rotation) are atomic
under one lock, the lock of the linked grant repository, which the linked refresh-token,
code and pending-request repositories share. tests/unit/test_state_parity.py runs the same
scenarios on both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from functions.core.platform.ddb import ConditionFailed
from functions.core.state.codes import AuthorizationCode, CodeSpent, Redemption
from functions.core.state.consent import Consent, consent_key
from functions.core.state.grants import Grant
from functions.core.state.pending_requests import (
    CALLBACK,
    PENDING_REQUESTS,
    Approval,
    DuplicateGrant,
    PendingAuthorizationRequest,
    RequestStatus,
)
from functions.core.state.ratelimit import RateDecision, rate_key, rate_window
from functions.core.state.refresh_tokens import GrantInactive, RefreshToken, SessionUpdate, TokenSpent


class InMemoryGrantRepository:
    """Test double with the same semantics as the DynamoDB implementation."""

    def __init__(self) -> None:
        self.items: dict[str, Grant] = {}
        self.reads = 0
        # One lock for every in-memory repository linked to this one (refresh tokens, codes,
        # transactions): their multi-item writes are atomic like a DynamoDB transaction.
        self.lock = threading.RLock()

    def get(self, grant_id: str) -> Grant | None:
        # Under the lock: reads never see half of a transaction (DynamoDB: serializable).
        with self.lock:
            self.reads += 1
            return self.items.get(grant_id)

    def create(self, grant: Grant) -> None:
        with self.lock:
            if grant.grant_id in self.items:
                raise ConditionFailed("create grant")
            self.items[grant.grant_id] = grant

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is None or grant.status == "revoked":
                return False
            self.items[grant_id] = replace(grant, status="revoked", revoked_at=now, revoked_reason=reason)
            return True

    def forget_upstream(self, grant_id: str) -> None:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is not None and grant.status == "revoked":
                self.items[grant_id] = replace(grant, upstream_refresh=None)

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is None or grant.status != "active":
                raise ConditionFailed("touch grant")
            self.items[grant_id] = replace(
                grant, last_used_at=now, upstream_refresh=upstream_refresh or grant.upstream_refresh
            )


class InMemoryConsentRepository:
    def __init__(self) -> None:
        self.items: dict[str, Consent] = {}

    def get(self, sub: str, client_id: str) -> Consent | None:
        return self.items.get(consent_key(sub, client_id))

    def put(self, consent: Consent) -> None:
        self.items[consent_key(consent.sub, consent.client_id)] = consent

    def delete(self, sub: str, client_id: str) -> None:
        self.items.pop(consent_key(sub, client_id), None)


class InMemoryRefreshTokenRepository:
    """Test twin; ``grants`` is the in-memory grant repository the session updates go to."""

    def __init__(self, grants: InMemoryGrantRepository | None = None) -> None:
        self.items: dict[str, RefreshToken] = {}
        self.grants = grants
        self._own_lock = threading.RLock()

    @property
    def _lock(self) -> threading.RLock:
        # Shared with the linked grants: a rotation and a revocation exclude each other.
        return self.grants.lock if self.grants is not None else self._own_lock

    def create(self, token: RefreshToken) -> None:
        with self._lock:
            if token.token_hash in self.items:
                raise ConditionFailed("create refresh token")
            self.items[token.token_hash] = token

    def get(self, token_hash: str) -> RefreshToken | None:
        with self._lock:  # serializable with the transactions, as a DynamoDB GetItem
            return self.items.get(token_hash)

    def mark_revoked(self, token_hash: str, now: int) -> None:
        with self._lock:
            token = self.items.get(token_hash)
            if token is not None:
                self.items[token_hash] = replace(token, status="revoked")

    def rotate(self, old_hash: str, new: RefreshToken, now: int, session: SessionUpdate | None = None) -> None:
        with self._lock:
            old = self.items.get(old_hash)
            self._check_session(session)
            if old is None or old.status != "active" or new.token_hash in self.items:
                raise TokenSpent("rotate refresh token")
            self.items[old_hash] = replace(old, status="rotated", rotated_at=now, successor=new.token_hash)
            self.items[new.token_hash] = new
            self._record(session, new.token_hash)

    def reissue_in_grace(
        self, old_hash: str, *, successor: str, rotated_since: int, max_mints: int, session: SessionUpdate | None
    ) -> None:
        with self._lock:
            old = self.items.get(old_hash)
            self._check_session(session)
            if (
                old is None
                or old.status != "rotated"
                or old.successor != successor
                or old.rotated_at is None
                or old.rotated_at < rotated_since
                or old.grace_mints >= max_mints
            ):
                raise TokenSpent("reissue in grace")
            self.items[old_hash] = replace(old, grace_mints=old.grace_mints + 1)
            self._record(session, None)

    def _check_session(self, session: SessionUpdate | None) -> None:
        if session is None:
            return
        grant = self.grants.items.get(session.grant_id) if self.grants is not None else None
        if grant is None or grant.status != "active":
            raise GrantInactive("record refresh on grant")

    def _record(self, session: SessionUpdate | None, head: str | None) -> None:
        if session is not None and self.grants is not None:
            grant = self.grants.items[session.grant_id]
            self.grants.items[session.grant_id] = replace(
                grant,
                scopes=session.scopes,
                last_used_at=session.used_at,
                upstream_refresh=session.upstream_refresh or grant.upstream_refresh,
                refresh_head=head or grant.refresh_head,
            )


class InMemoryPendingRequestRepository:
    def __init__(self) -> None:
        self.items: dict[str, PendingAuthorizationRequest] = {}
        self._lock = threading.RLock()
        self._linked: tuple[InMemoryCodeRepository, InMemoryGrantRepository, InMemoryConsentRepository] | None = None

    def link(
        self, codes: InMemoryCodeRepository, grants: InMemoryGrantRepository, consents: InMemoryConsentRepository
    ) -> None:
        """The repositories an approval writes to; their writes share the grants' lock."""
        self._linked = (codes, grants, consents)
        self._lock = grants.lock

    def create(self, txn: PendingAuthorizationRequest) -> None:
        with self._lock:
            if txn.txn_id in self.items:
                raise ConditionFailed("create txn")
            self.items[txn.txn_id] = txn

    def get(self, txn_id: str) -> PendingAuthorizationRequest | None:
        with self._lock:
            return self.items.get(txn_id)

    def authenticate(self, request: PendingAuthorizationRequest, now: int) -> None:
        with self._lock:
            txn = self.items.get(request.txn_id)
            if txn is None or txn.status != "pending" or now >= txn.expires_at:
                raise ConditionFailed("authenticate txn")
            # Exactly what DynamoDB stores: the declared callback fields, as written and read back.
            callback = PENDING_REQUESTS.phase_fields(CALLBACK)
            self.items[request.txn_id] = replace(
                txn, status="authenticated", **{f: getattr(request, f) for f in callback}
            )

    def decide(self, txn_id: str, *, expected: RequestStatus, csrf_hash: str | None, now: int) -> None:
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != expected or now >= txn.expires_at:
                raise ConditionFailed("decide txn")
            if csrf_hash is not None and txn.csrf_hash != csrf_hash:
                raise ConditionFailed("decide txn")
            self.items[txn_id] = replace(txn, status="decided")

    def approve(
        self, txn_id: str, approval: Approval, *, expected: RequestStatus, csrf_hash: str | None, now: int
    ) -> None:
        if self._linked is None:
            raise RuntimeError("link() the code, grant and consent repositories first")
        codes, grants, consents = self._linked
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != expected or now >= txn.expires_at:
                raise ConditionFailed("approve txn")
            if csrf_hash is not None and txn.csrf_hash != csrf_hash:
                raise ConditionFailed("approve txn")
            if approval.grant.grant_id in grants.items:
                raise DuplicateGrant("approve txn")
            if approval.code.code_hash in codes.items:
                raise ConditionFailed("approve txn")
            self.items[txn_id] = replace(txn, status="decided")
            grants.items[approval.grant.grant_id] = approval.grant
            codes.items[approval.code.code_hash] = approval.code
            consents.put(approval.consent)


class InMemoryCodeRepository:
    def __init__(self) -> None:
        self.items: dict[str, AuthorizationCode] = {}
        self._lock = threading.RLock()
        self._linked: tuple[InMemoryGrantRepository, InMemoryRefreshTokenRepository] | None = None

    def link(self, grants: InMemoryGrantRepository, refresh_tokens: InMemoryRefreshTokenRepository) -> None:
        """The repositories a redemption writes to; their writes share the grants' lock."""
        self._linked = (grants, refresh_tokens)
        self._lock = grants.lock

    def create(self, code: AuthorizationCode) -> None:
        with self._lock:
            if code.code_hash in self.items:
                raise ConditionFailed("create code")
            self.items[code.code_hash] = code

    def get(self, code_hash: str) -> AuthorizationCode | None:
        # Reads take the lock too: a GetItem is serializable with transactions in DynamoDB,
        # so it never sees half of one (a code spent, its grant not yet active).
        with self._lock:
            return self.items.get(code_hash)

    def redeem(self, code: AuthorizationCode, redemption: Redemption) -> None:
        if self._linked is None:
            raise RuntimeError("link() the grant and refresh-token repositories first")
        grants, refresh_tokens = self._linked
        rt = redemption.refresh_token
        with self._lock:
            stored = self.items.get(code.code_hash)
            if stored is None or stored.used_at is not None:
                raise CodeSpent("redeem code")
            grant = grants.items.get(code.grant_id)
            now = redemption.used_at
            if grant is None or grant.status == "revoked" or now >= grant.expires_at:
                raise GrantInactive("redeem code")
            if rt is not None and rt.token_hash in refresh_tokens.items:
                raise ConditionFailed("redeem code")
            self.items[code.code_hash] = replace(
                stored, used_at=now, retry_until=redemption.retry_until, answer=redemption.answer
            )
            grants.items[code.grant_id] = replace(
                grant,
                status="active",
                expires_at=redemption.grant_expires_at,
                last_used_at=now,
                refresh_head=rt.token_hash if rt is not None else grant.refresh_head,
            )
            if rt is not None:
                refresh_tokens.items[rt.token_hash] = rt


class InMemoryRateLimiter:
    """Test double with the same fixed-window semantics."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.counts: dict[str, int] = {}

    def hit(self, bucket: str, source_ip: str, limit: int) -> RateDecision:
        minute, retry_after = rate_window(self._clock())
        key = rate_key(bucket, source_ip, minute)
        if self.counts.get(key, 0) >= limit:
            return RateDecision(False, retry_after)
        self.counts[key] = self.counts.get(key, 0) + 1
        return RateDecision(True, window=minute)

    def refund(self, bucket: str, source_ip: str, window: int) -> None:
        key = rate_key(bucket, source_ip, window)
        if self.counts.get(key, 0) > 0:
            self.counts[key] -= 1
