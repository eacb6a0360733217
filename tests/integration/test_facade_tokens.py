"""Codes and refresh tokens through the real token handler and DynamoDB: single-use redemption,
rotation, the reuse grace, parallel refreshes and scope narrowing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from local.config import GRANTS_TABLE
from tests.facade_fakes import (
    PUBLIC_REDIRECT,
)
from tests.integration.facade_flow import (
    Facade,
    code_for,
    exchange,
    grant_of_code,
    mcp_tools,
    origin_jti,
    token,
)


def test_code_redemption_through_dynamodb(facade: Facade) -> None:
    # Sequential semantics against moto (its TransactWriteItems is not thread-safe; the
    # 50-way races run against the in-memory twins in tests/fault/test_races.py).
    code = code_for(facade, "alice@example.com")
    grant_id = grant_of_code(facade, code)
    assert facade.grants.get(grant_id).status == "pending"  # until its code is redeemed
    status, first = exchange(facade, code)
    assert status == 200 and facade.grants.get(grant_id).status == "active"
    # The identical request again (a lost answer): the same answer, nothing revoked.
    status, again = exchange(facade, code)
    assert status == 200 and again["refresh_token"] == first["refresh_token"]
    assert mcp_tools(facade, again["access_token"])[0] == 200
    # Another verifier is a replay (RFC 6749 section 4.1.2): refused, the grant revoked.
    status, replay = token(
        facade,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": PUBLIC_REDIRECT, "code_verifier": "w" * 43},
    )
    assert (status, replay["error"]) == (400, "invalid_grant")
    assert facade.grants.get(grant_id).status == "revoked"
    assert mcp_tools(facade, first["access_token"])[0] == 401


def test_refresh_scope_narrowing_through_dynamodb(facade: Facade) -> None:
    from functions.core.platform.crypto import sha256_hex
    from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository

    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200 and first["scope"] == "notes:read notes:write"
    rts = DynamoRefreshTokenRepository(GRANTS_TABLE)
    assert rts.get(sha256_hex(first["refresh_token"])).scopes == {"notes:read", "notes:write"}
    status, narrowed = token(
        facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "notes:read"}
    )
    assert (status, narrowed["scope"]) == (200, "notes:read")
    # RFC 6749 section 6: the successor keeps the presented token's scope.
    assert rts.get(sha256_hex(narrowed["refresh_token"])).scopes == {"notes:read", "notes:write"}
    # The narrowed scope is enforced at /mcp: the grant's current session holds it.
    assert mcp_tools(facade, narrowed["access_token"]) == (200, {"whoami", "list_notes"})
    status, full = token(facade, {"grant_type": "refresh_token", "refresh_token": narrowed["refresh_token"]})
    assert (status, full["scope"]) == (200, "notes:read notes:write")
    assert mcp_tools(facade, full["access_token"]) == (200, {"whoami", "list_notes", "add_note", "archive_note"})


def test_same_refresh_token_twice_within_the_grace(facade: Facade) -> None:
    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    results = [token(facade, form) for _ in range(2)]  # a lost response, then its retry
    assert [status for status, _ in results] == [200, 200]
    for _, pair in results:
        assert mcp_tools(facade, pair["access_token"])[0] == 200
        assert token(facade, {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})[0] == 200
    assert facade.grants.get(origin_jti(first["access_token"])).status == "active"


def test_parallel_refreshes_through_dynamodb_never_revoke(facade: Facade) -> None:
    # Losing a parallel race is never theft. (The exact bound on grace pairs under
    # concurrency is asserted against the in-memory twin in tests/unit/test_token_grace.py:
    # moto does not serialise concurrent TransactWriteItems the way DynamoDB does; sequentially
    # it enforces the same conditions, tests/unit/test_state_parity.py.)
    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: token(facade, form), range(6)))
    won = [body for status, body in results if status == 200]
    # A loser is refused (invalid_grant) or, when its upstream call to Cognito timed out (the
    # local emulator under a loaded machine), told to retry (503 temporarily_unavailable, which
    # is safe to retry): never anything that ends the session.
    lost = [(status, body["error"]) for status, body in results if status != 200]
    assert won and all(answer in {(400, "invalid_grant"), (503, "temporarily_unavailable")} for answer in lost), lost
    assert facade.grants.get(origin_jti(first["access_token"])).status == "active"
    assert all(mcp_tools(facade, body["access_token"])[0] == 200 for body in won)
