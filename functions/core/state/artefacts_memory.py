"""In-memory twins of the artefact repositories (functions/core/state/artefacts.py), for tests.

Same conditional semantics as DynamoDB: every transition checks the previous state and
multi-item writes (an approval, a redemption) are atomic under one lock, the lock of the
linked grant repository, which the linked refresh-token repository shares too.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from functions.core.platform.ddb import ConditionFailed
from functions.core.state.artefacts import (
    Approval,
    CallbackResult,
    Code,
    CodeSpent,
    DuplicateGrant,
    Redemption,
    Txn,
    TxnStatus,
)
from functions.core.state.consent import InMemoryConsentRepository
from functions.core.state.grants import InMemoryGrantRepository
from functions.core.state.refresh_tokens import GrantInactive, InMemoryRefreshTokenRepository


class InMemoryTxnRepository:
    def __init__(self) -> None:
        self.items: dict[str, Txn] = {}
        self._lock = threading.RLock()
        self._linked: tuple[InMemoryCodeRepository, InMemoryGrantRepository, InMemoryConsentRepository] | None = None

    def link(
        self, codes: InMemoryCodeRepository, grants: InMemoryGrantRepository, consents: InMemoryConsentRepository
    ) -> None:
        """The repositories an approval writes to; their writes share the grants' lock."""
        self._linked = (codes, grants, consents)
        self._lock = grants.lock

    def create(self, txn: Txn) -> None:
        with self._lock:
            if txn.txn_id in self.items:
                raise ConditionFailed("create txn")
            self.items[txn.txn_id] = txn

    def get(self, txn_id: str) -> Txn | None:
        with self._lock:
            return self.items.get(txn_id)

    def authenticate(self, txn_id: str, result: CallbackResult, now: int) -> None:
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != "pending" or now >= txn.expires_at:
                raise ConditionFailed("authenticate txn")
            self.items[txn_id] = replace(
                txn,
                status="authenticated",
                sub=result.sub,
                username=result.username,
                email=result.email,
                groups=result.groups,
                origin_jti=result.origin_jti,
                allowed_scopes=result.allowed_scopes,
                upstream_tokens=result.upstream_tokens,
                csrf_hash=result.csrf_hash,
            )

    def decide(self, txn_id: str, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != expected or now >= txn.expires_at:
                raise ConditionFailed("decide txn")
            if csrf_hash is not None and txn.csrf_hash != csrf_hash:
                raise ConditionFailed("decide txn")
            self.items[txn_id] = replace(txn, status="decided")

    def approve(self, txn_id: str, approval: Approval, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
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
        self.items: dict[str, Code] = {}
        self._lock = threading.RLock()
        self._linked: tuple[InMemoryGrantRepository, InMemoryRefreshTokenRepository] | None = None

    def link(self, grants: InMemoryGrantRepository, refresh_tokens: InMemoryRefreshTokenRepository) -> None:
        """The repositories a redemption writes to; their writes share the grants' lock."""
        self._linked = (grants, refresh_tokens)
        self._lock = grants.lock

    def create(self, code: Code) -> None:
        with self._lock:
            if code.code_hash in self.items:
                raise ConditionFailed("create code")
            self.items[code.code_hash] = code

    def get(self, code_hash: str) -> Code | None:
        # Reads take the lock too: a GetItem is serializable with transactions in DynamoDB,
        # so it never sees half of one (a code spent, its grant not yet active).
        with self._lock:
            return self.items.get(code_hash)

    def redeem(self, code: Code, redemption: Redemption) -> None:
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
