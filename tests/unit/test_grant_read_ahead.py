"""A cold container's first token: the grant is read while the JWKS is fetched, used only if the token verifies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from functions.core.cognito.jwks import JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.platform.errors import DependencyError
from functions.core.state.grants import CachedGrants, Grant
from functions.mcp_server.auth import Denied, McpAuthenticator
from functions.mcp_server.principal import Principal
from tests.fakes.state import InMemoryGrantRepository
from tests.helpers import FakeJwks, access_claims, grant, make_key, mcp_settings, mint

KEY = make_key("kid-1")
FORGER = make_key("kid-1")  # same kid, another key: a forged signature


class Reads:
    """Grant reads, recording the thread each ran on; can fail, and can say when one started."""

    def __init__(self, *, fail: bool = False) -> None:
        self.repo = InMemoryGrantRepository()
        self.repo.create(grant("origin-alice", "sub-alice", ("notes:read",)))
        self.threads: list[str] = []
        self.started = threading.Event()
        self.fail = fail

    def get(self, grant_id: str) -> Grant | None:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        if self.fail:
            raise DependencyError("read grant failed: ProvisionedThroughputExceededException")
        return self.repo.get(grant_id)


def authenticator(
    reads: Reads, fetcher: Any, cache_seconds: float = 10, clock: Callable[[], float] = time.monotonic
) -> McpAuthenticator:
    settings = mcp_settings()
    jwks = JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=fetcher)
    grants = CachedGrants(reads, cache_seconds, clock=clock)
    return McpAuthenticator(settings, CognitoAccessTokenVerifier(settings, jwks), grants)


def test_the_first_verification_and_the_grant_read_run_at_the_same_time() -> None:
    reads = Reads()
    overlapped: list[bool] = []

    def jwks_waits_for_the_grant_read(url: str) -> dict[str, Any]:
        # A bound, not a sleep: with the reads in sequence this waits it out and records False.
        overlapped.append(reads.started.wait(timeout=30))
        return {"keys": [KEY.public_jwk]}

    auth = authenticator(reads, jwks_waits_for_the_grant_read)
    principal = auth.authenticate("Bearer " + mint(KEY, access_claims()))
    assert isinstance(principal, Principal) and principal.grant_id == "origin-alice"
    assert overlapped == [True]
    assert reads.threads == ["grant-read-ahead"]
    # Keys held: the next token is verified first (microseconds) and its grant read after, in line.
    auth.authenticate("Bearer " + mint(KEY, access_claims(jti="jti-2")))
    assert reads.threads == ["grant-read-ahead"]  # the first read is cached: no second read at all
    assert isinstance(auth.authenticate("Bearer " + mint(KEY, access_claims(origin_jti="origin-bob"))), Denied)
    assert reads.threads == ["grant-read-ahead", "MainThread"]


def test_a_grant_read_ahead_for_a_forged_token_is_never_used() -> None:
    reads = Reads()
    auth = authenticator(reads, FakeJwks([KEY.public_jwk]))
    denied = auth.authenticate("Bearer " + mint(FORGER, access_claims()))
    assert reads.started.wait(timeout=30)  # its grant was read ahead...
    assert isinstance(denied, Denied) and denied.reason == "token signature invalid"
    assert denied.answer.status == 401  # ...and the token refused all the same


@pytest.mark.parametrize("verifies", [True, False])
def test_a_failed_read_ahead_is_a_503_only_for_a_token_that_verifies(verifies: bool) -> None:
    reads = Reads(fail=True)
    auth = authenticator(reads, FakeJwks([KEY.public_jwk]))
    denied = auth.authenticate("Bearer " + mint(KEY if verifies else FORGER, access_claims()))
    assert isinstance(denied, Denied)
    # Fail closed: an outage is 503 + Retry-After, a forged token 401, never an allow.
    assert denied.answer.status == (503 if verifies else 401)


def test_only_one_grant_is_read_ahead_while_the_jwks_stays_unreachable() -> None:
    reads = Reads()
    auth = authenticator(reads, FakeJwks([KEY.public_jwk], fail=True))
    for n in range(5):
        denied = auth.authenticate("Bearer " + mint(FORGER, access_claims(origin_jti=f"origin-{n}")))
        assert isinstance(denied, Denied) and denied.answer.status == 503
    # Unverifiable tokens with invented grant ids cost one DynamoDB read per container, not one each.
    for thread in threading.enumerate():
        if thread.name == "grant-read-ahead":
            thread.join(timeout=30)
    assert reads.threads == ["grant-read-ahead"]


def test_no_read_ahead_once_the_keys_are_held() -> None:
    reads = Reads()
    auth = authenticator(reads, FakeJwks([KEY.public_jwk]))
    auth._verifier._jwks.get("kid-1")  # keys fetched before the first token (an on-demand init's prefetch)
    assert isinstance(auth.authenticate("Bearer " + mint(KEY, access_claims())), Principal)
    # Verified first (microseconds, offline), the grant read after it, in line.
    assert reads.threads == ["MainThread"]


def test_a_read_ahead_older_than_the_grant_cache_is_read_again() -> None:
    reads = Reads()
    now = [0.0]

    def slow_jwks_meanwhile_revoked(url: str) -> dict[str, Any]:
        assert reads.started.wait(timeout=30)
        for thread in threading.enumerate():
            if thread.name == "grant-read-ahead":
                thread.join(timeout=30)  # the read ahead saw the grant active...
        reads.repo.revoke("origin-alice", "user_revoked", 1)  # ...then it was revoked...
        now[0] = 15.0  # ...and this fetch outlasted GRANT_CACHE_SECONDS (10)
        return {"keys": [KEY.public_jwk]}

    auth = authenticator(reads, slow_jwks_meanwhile_revoked, clock=lambda: now[0])
    denied = auth.authenticate("Bearer " + mint(KEY, access_claims()))
    assert isinstance(denied, Denied) and denied.answer.status == 401
    assert reads.threads == ["grant-read-ahead", "MainThread"]


def test_no_read_ahead_without_a_grant_cache() -> None:
    reads = Reads()
    auth = authenticator(reads, FakeJwks([KEY.public_jwk]), cache_seconds=0)
    assert isinstance(auth.authenticate("Bearer " + mint(KEY, access_claims())), Principal)
    # GRANT_CACHE_SECONDS=0: every answer is read after verifying, so a read ahead would be a wasted read.
    assert reads.threads == ["MainThread"]
