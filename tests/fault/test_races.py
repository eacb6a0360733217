"""Races, in process, 50 requests at once (one thread each, released together by a barrier,
no worker limit), many runs, against the in-memory repositories, which have DynamoDB's
conditional and transactional semantics (moto's TransactWriteItems is not thread-safe;
the same conditions are checked sequentially against moto in tests/unit/test_state_parity.py).

The outcomes the README states:

* one code, 50 identical redemptions by its client: exactly one redeems it (one refresh
  token, the grant activated once), every other request is a retry of that redemption and
  gets its answer; nothing is revoked (RFC 6749 section 4.1.2 replay revocation applies to
  presentations that are not the client's identical request, or come after the window);
* one refresh token, 50 identical refreshes: exactly one rotation, at most
  ``MAX_GRACE_PAIRS`` more pairs from the grace, every other request ``invalid_grant``,
  and the grant stays active (OAuth 2.1 section 4.3.1: losing a race is never theft).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from functions.core.platform.errors import OAuthError
from functions.token.service import MAX_GRACE_PAIRS
from tests import facade_fakes
from tests.facade_fakes import Facade, approve, facade_settings

RACERS = 50
RUNS = 40


def race(request: Callable[[], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``request`` on RACERS threads at once; (answers, OAuth error codes)."""
    barrier = threading.Barrier(RACERS)
    won: list[dict[str, Any]] = []
    lost: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            body = request()
        except OAuthError as exc:
            with lock:
                lost.append(exc.error)
        else:
            with lock:
                won.append(body)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    # Switch threads as often as the interpreter allows, so that requests interleave
    # between their reads and their conditional writes (the window where races live).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return won, lost


def code_form(code: str) -> dict[str, str]:
    return facade_fakes.code_form(code, client_id="public-agent")


@pytest.mark.parametrize("run", range(RUNS))
def test_fifty_redemptions_of_one_code_have_exactly_one_winner(run: int) -> None:
    del run
    facade = Facade()
    code = approve(facade)["code"]
    won, lost = race(lambda: facade.token().token(code_form(code), ""))
    assert lost == [] and len(won) == RACERS
    # One redemption: one refresh token, one answer that everybody got.
    assert len(facade.rts.items) == 1
    assert len({(body["access_token"], body["refresh_token"]) for body in won}) == 1
    (grant,) = facade.grants.items.values()
    assert grant.status == "active" and grant.refresh_head in facade.rts.items and not facade.cognito.revoked
    refresh = {"grant_type": "refresh_token", "refresh_token": won[0]["refresh_token"], "client_id": "public-agent"}
    assert facade.token().token(refresh, "")["access_token"]


@pytest.mark.parametrize("run", range(RUNS))
def test_fifty_refreshes_of_one_token_never_cost_the_grant(run: int) -> None:
    del run
    facade = Facade()
    first = facade.token().token(code_form(approve(facade)["code"]), "")
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "public-agent"}
    won, lost = race(lambda: facade.token().token(form, ""))
    assert len(won) == 1 + MAX_GRACE_PAIRS and lost == ["invalid_grant"] * (RACERS - 1 - MAX_GRACE_PAIRS)
    (grant,) = facade.grants.items.values()
    assert grant.status == "active" and not facade.cognito.revoked
    for pair in won:  # every pair handed out works
        again = {**form, "refresh_token": pair["refresh_token"]}
        assert facade.token().token(again, "")["refresh_token"]


@pytest.mark.parametrize("run", range(RUNS // 3))
def test_strict_rotation_has_exactly_one_winner(run: int) -> None:
    del run
    facade = Facade(settings=facade_settings(refresh_reuse_grace_seconds=0))
    first = facade.token().token(code_form(approve(facade)["code"]), "")
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "public-agent"}
    won, lost = race(lambda: facade.token().token(form, ""))
    assert len(won) == 1 and len(lost) == RACERS - 1
