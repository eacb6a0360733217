"""The cold start's JWKS prefetch: fetched while init imports, never a second fetch, never an allow."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from functions.core.cognito.jwks import JwksCache, prefetch_on_cold_start
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.platform.errors import DependencyError
from tests.helpers import FakeJwks, access_claims, make_key, mcp_settings, mint

KEY = make_key("kid-1")


def cache(jwks: Any) -> JwksCache:
    return JwksCache(mcp_settings().jwks_url, min_refresh_seconds=60, fetcher=jwks, clock=lambda: 1000.0)


def test_prefetch_builds_the_keys_the_first_request_uses() -> None:
    jwks = FakeJwks([KEY.public_jwk])
    keys = cache(jwks)
    keys.prefetch().join()
    assert keys.current("kid-1") is not None
    assert CognitoAccessTokenVerifier(mcp_settings(), keys).verify(mint(KEY, access_claims())).sub == "sub-alice"
    assert jwks.calls == 1


def test_a_failed_prefetch_is_no_attempt_and_the_request_fetches_again(caplog: pytest.LogCaptureFixture) -> None:
    jwks = FakeJwks([KEY.public_jwk], fail=True)
    keys = cache(jwks)
    keys.prefetch().join()
    assert keys.current("kid-1") is None
    assert "JWKS prefetch failed" in caplog.text
    # Fail closed: the request sees the outage (503), not a rejected token and not an allow.
    with pytest.raises(DependencyError):
        keys.get("kid-1")
    jwks.fail = False
    # The failure did not open the one-refetch-per-minute window: the next request verifies.
    assert keys.get("kid-1") is not None
    assert jwks.calls == 3


class _WatchedLock:
    """A lock that says when a second thread starts waiting for it."""

    def __init__(self) -> None:
        self._inner = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self) -> None:
        if not self._inner.acquire(blocking=False):
            self.contended.set()
            self._inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self._inner.release()


def test_a_request_arriving_mid_prefetch_waits_for_it_instead_of_fetching_twice() -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(url: str) -> dict[str, Any]:
        calls.append(url)
        entered.set()
        release.wait()
        return {"keys": [KEY.public_jwk]}

    keys = cache(slow)
    lock = _WatchedLock()
    keys._lock = lock  # type: ignore[assignment]
    prefetch = keys.prefetch()
    entered.wait()
    found: list[object] = []
    request = threading.Thread(target=lambda: found.append(keys.get("kid-1")))
    request.start()
    try:
        # The request is blocked behind the fetch in flight (a bound, not a sleep: it fails the
        # test if the prefetch fetched without holding the lock).
        assert lock.contended.wait(timeout=30)
    finally:
        release.set()
    prefetch.join()
    request.join()
    assert found[0] is not None
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("environ", "starts"),
    [
        ({}, False),  # not in Lambda: tests, make dev, tools importing a handler
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}, False),  # keys would age unseen in the snapshot
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}, True),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, True),
    ],
)
def test_prefetch_runs_only_in_a_lambda_init_without_snapstart(environ: dict[str, str], starts: bool) -> None:
    jwks = FakeJwks([KEY.public_jwk])
    thread = prefetch_on_cold_start(cache(jwks), environ)
    if thread is not None:
        thread.join()
    assert (thread is not None) is starts
    assert jwks.calls == (1 if starts else 0)
