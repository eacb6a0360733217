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


def test_a_request_never_waits_for_the_prefetch_and_keeps_its_fresher_keys() -> None:
    release = threading.Event()
    calls: list[str] = []

    def first_call_hangs(url: str) -> dict[str, Any]:
        calls.append(url)
        if len(calls) == 1:  # the prefetch: a JWKS that does not answer (or an environment frozen mid-fetch)
            release.wait(timeout=30)
        return {"keys": [KEY.public_jwk]}

    keys = cache(first_call_hangs)
    prefetch = keys.prefetch()
    found: list[object] = []
    request = threading.Thread(target=lambda: found.append(keys.get("kid-1")))
    request.start()
    request.join(timeout=30)  # a bound, not a sleep: the request fetches for itself, without waiting
    try:
        assert not request.is_alive()
        assert found[0] is not None and len(calls) == 2
    finally:
        release.set()
    prefetch.join()
    # The late prefetch does not replace the keys the request installed.
    assert keys.current("kid-1") is found[0]


@pytest.mark.parametrize(
    ("environ", "starts"),
    [
        ({}, False),  # not in Lambda: tests, make dev, tools importing a handler
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}, False),  # keys would age unseen in the snapshot
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}, True),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, True),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}, False),  # not known to be unsnapshotted
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "some-future-kind"}, False),
    ],
)
def test_prefetch_runs_only_in_the_inits_known_not_to_be_snapshotted(environ: dict[str, str], starts: bool) -> None:
    jwks = FakeJwks([KEY.public_jwk])
    thread = prefetch_on_cold_start(cache(jwks), environ)
    if thread is not None:
        thread.join()
    assert (thread is not None) is starts
    assert jwks.calls == (1 if starts else 0)
