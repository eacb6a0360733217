"""Refresh-token reuse grace (RFC 9700 section 4.14.2) and narrowed refreshes enforced at /mcp.

A retried or parallel refresh within REFRESH_REUSE_GRACE_SECONDS gets a working pair with
the SAME successor refresh token and revokes nothing; after the grace, reuse is theft as
before (OAuth 2.1 section 4.3.1). The grace never forks the chain.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from functions.core.cognito.jwks import JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import OAuthError
from functions.core.state.grants import CachedGrants
from functions.mcp_server.auth import McpAuthenticator
from functions.mcp_server.principal import Principal
from functions.token.service import MAX_GRACE_PAIRS
from tests.facade_fakes import Facade, facade_settings
from tests.helpers import mcp_settings
from tests.unit.test_token import exchange, refused
from tests.unit.test_token_refresh import grant_of, refresh


def principal(facade: Facade, access_token: str) -> Principal | None:
    """What /mcp makes of an access token (real authenticator, grants read uncached)."""
    settings = mcp_settings(scope_group_ceilings={"notes:write": ("editors",)})
    verifier = CognitoAccessTokenVerifier(
        settings, JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=facade.jwks)
    )
    found = McpAuthenticator(settings, verifier, CachedGrants(facade.grants, 0)).authenticate("Bearer " + access_token)
    return found if isinstance(found, Principal) else None


def works(facade: Facade, pair: dict[str, Any]) -> bool:
    """A working pair: /mcp accepts the access token and the refresh token refreshes."""
    return principal(facade, pair["access_token"]) is not None and bool(
        refresh(facade, pair["refresh_token"])["access_token"]
    )


def test_same_token_twice_within_the_grace_gives_two_working_pairs() -> None:
    facade = Facade()
    first = exchange(facade)
    facade.clock.now += 5
    one = refresh(facade, first["refresh_token"])
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds - 1  # still inside the grace
    two = refresh(facade, first["refresh_token"])  # the lost response's retry
    assert one["refresh_token"] == two["refresh_token"] != first["refresh_token"]  # one chain
    assert one["access_token"] != two["access_token"]
    assert grant_of(facade).status == "active" and not facade.cognito.revoked
    assert works(facade, one) and works(facade, two)
    assert facade.consents.get(grant_of(facade).sub, "public-agent") is not None


def test_after_the_grace_reuse_still_revokes_everything() -> None:
    facade = Facade()
    first = exchange(facade)
    second = refresh(facade, first["refresh_token"])
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    grant = grant_of(facade)
    assert grant.status == "revoked" and grant.revoked_reason == "refresh_reuse"
    assert facade.cognito.revoked and facade.consents.get(grant.sub, grant.client_id) is None
    assert principal(facade, second["access_token"]) is None
    refused(lambda: refresh(facade, second["refresh_token"]), "invalid_grant")


def test_zero_grace_is_strict() -> None:
    facade = Facade(settings=facade_settings(refresh_reuse_grace_seconds=0))
    first = exchange(facade)
    refresh(facade, first["refresh_token"])
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")  # same second
    assert grant_of(facade).status == "revoked"


def test_a_rotated_token_mints_a_bounded_number_of_pairs() -> None:
    facade = Facade()
    first = exchange(facade)
    pairs = [refresh(facade, first["refresh_token"]) for _ in range(1 + MAX_GRACE_PAIRS)]
    # The bound is refused without revocation: still inside the grace, so not theft.
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    assert grant_of(facade).status == "active"
    assert all(works(facade, p) for p in pairs)


def test_a_grace_pair_for_another_client_is_refused() -> None:
    facade = Facade()
    first = exchange(facade)
    refresh(facade, first["refresh_token"])
    other = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "conf-agent"}
    with pytest.raises(OAuthError):
        facade.token().token(other, "")
    assert grant_of(facade).status == "active"


def test_a_revoked_grant_gets_no_grace_pair() -> None:
    facade = Facade()
    first = exchange(facade)
    refresh(facade, first["refresh_token"])
    facade.token().revoke({"token": first["access_token"], "client_id": "public-agent"}, "")
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")


def _race(facade: Facade, token: str, threads: int) -> tuple[list[dict[str, Any]], list[str]]:
    barrier = threading.Barrier(threads)
    won: list[dict[str, Any]] = []
    lost: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            body = refresh(facade, token)
        except OAuthError as exc:
            with lock:
                lost.append(exc.error)
        else:
            with lock:
                won.append(body)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return won, lost


def _minted(facade: Facade, token: str) -> int:
    return len([t for t in facade.rts.items.values() if t.token_hash != sha256_hex(token)])


@pytest.mark.parametrize("run", range(5))
def test_parallel_refreshes_never_revoke(run: int) -> None:
    del run
    facade = Facade()
    first = exchange(facade)
    won, lost = _race(facade, first["refresh_token"], threads=12)
    expected = 1 + MAX_GRACE_PAIRS
    assert len(won) == expected and lost == ["invalid_grant"] * (12 - expected)
    assert grant_of(facade).status == "active" and not facade.cognito.revoked
    assert len({pair["refresh_token"] for pair in won}) == 1  # every winner shares one chain
    assert _minted(facade, first["refresh_token"]) == 1
    assert all(works(facade, pair) for pair in won)


@pytest.mark.parametrize("run", range(3))
def test_parallel_refreshes_without_grace_mint_exactly_one_pair(run: int) -> None:
    # Strict mode: exactly one rotation wins; a request that read the token after the
    # rotation presented a rotated token, which is reuse (grant revoked) by definition.
    del run
    facade = Facade(settings=facade_settings(refresh_reuse_grace_seconds=0))
    first = exchange(facade)
    won, lost = _race(facade, first["refresh_token"], threads=12)
    assert len(won) == 1 and lost == ["invalid_grant"] * 11
    assert _minted(facade, first["refresh_token"]) == 1


# --------------------------------------------------------------------------- one chain per token
def _live_chains(facade: Facade) -> int:
    """Refresh tokens of the grant that can still rotate (each is a chain's head)."""
    return len([t for t in facade.rts.items.values() if t.status == "active"])


def test_a_thief_racing_the_client_shares_its_chain_and_is_detected() -> None:
    # RFC 9700 section 4.14.2: a stolen token refreshed just before the client does must
    # not give the thief a chain of its own; the first later use of an older token is reuse.
    facade = Facade()
    stolen = exchange(facade)["refresh_token"]
    thief = refresh(facade, stolen)
    facade.clock.now += 5
    client = refresh(facade, stolen)  # inside the grace: a working answer, no revocation
    assert client["refresh_token"] == thief["refresh_token"] and _live_chains(facade) == 1
    assert grant_of(facade).status == "active"
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1
    refresh(facade, thief["refresh_token"])  # the thief continues the one chain
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1
    refused(lambda: refresh(facade, client["refresh_token"]), "invalid_grant")  # the client continues: reuse
    grant = grant_of(facade)
    assert grant.status == "revoked" and grant.revoked_reason == "refresh_reuse" and facade.cognito.revoked
    assert _live_chains(facade) == 0


def test_a_thief_running_ahead_of_the_client_is_still_detected() -> None:
    # The thief rotates twice before the client's refresh lands in the first token's grace:
    # the client gets the (already rotated) successor, so its next refresh is reuse.
    facade = Facade()
    stolen = exchange(facade)["refresh_token"]
    ahead = refresh(facade, refresh(facade, stolen)["refresh_token"])
    client = refresh(facade, stolen)
    assert _live_chains(facade) == 1 and client["refresh_token"] != ahead["refresh_token"]
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1
    refused(lambda: refresh(facade, client["refresh_token"]), "invalid_grant")
    assert grant_of(facade).status == "revoked"
    refused(lambda: refresh(facade, ahead["refresh_token"]), "invalid_grant")


def test_grace_answers_never_multiply_chains() -> None:
    # Every grace answer of every generation carries the one successor: one live chain,
    # however often each token is presented again inside its grace.
    facade = Facade()
    tokens = [exchange(facade)["refresh_token"]]
    for _ in range(4):
        answers = [refresh(facade, tokens[-1]) for _ in range(1 + MAX_GRACE_PAIRS)]
        assert len({a["refresh_token"] for a in answers}) == 1
        assert _live_chains(facade) == 1
        tokens.append(answers[0]["refresh_token"])
    assert grant_of(facade).refresh_head == sha256_hex(tokens[-1])


def test_a_spent_grace_is_refused_before_calling_cognito() -> None:
    facade = Facade()
    first = exchange(facade)
    for _ in range(1 + MAX_GRACE_PAIRS):
        refresh(facade, first["refresh_token"])
    calls = facade.cognito.refreshes
    for _ in range(3):
        refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    assert facade.cognito.refreshes == calls and grant_of(facade).status == "active"


# --------------------------------------------------------------------------- narrowed refresh at /mcp
def test_narrowed_refresh_is_enforced_at_mcp() -> None:
    facade = Facade()
    first = exchange(facade)
    full = principal(facade, first["access_token"])
    assert full is not None and full.scopes == {"notes:read", "notes:write"}
    narrowed = refresh(facade, first["refresh_token"], scope="notes:read")
    assert narrowed["scope"] == "notes:read"
    seen = principal(facade, narrowed["access_token"])
    assert seen is not None and seen.scopes == {"notes:read"}  # add_note is gone
    # RFC 6749 section 6: omitting scope later means the scope originally granted again.
    widened = refresh(facade, narrowed["refresh_token"])
    assert widened["scope"] == "notes:read notes:write"
    seen = principal(facade, widened["access_token"])
    assert seen is not None and seen.scopes == {"notes:read", "notes:write"}
