"""Every dependency call of every facade and /mcp handler, failed one at a time.

For each request (scenario) and each dependency, a run without faults counts the calls the
request makes to that dependency; then, for every N up to that count, the same request (on
fresh state) runs with exactly the Nth call failing. It must be answered 503 with
``Retry-After``: never 400/401/500, never tokens or a code (the only exceptions are calls
whose failure does not change the answer, listed per scenario: best-effort clean-ups). Then
the identical request is sent again after recovery and must succeed, and what it returned
must work (a code redeems, tokens refresh, a revocation bites).

Dependencies are cut at the boto3 client (DynamoDB, KMS on moto) or at the object boundary
(Cognito, the client resolver, the gateway secret, JWKS at the verifier): tests/fault/harness.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from jose import jwt
from moto import mock_aws

from functions.core.platform.crypto import sha256_hex
from tests.facade_fakes import CONF_REDIRECT, query_of
from tests.fault.harness import Answer, Aws, Faults, Kit

DEPENDENCIES = ("dynamodb", "kms", "clients", "cognito", "cognito-idp", "jwks")
COGNITO_AUTHORIZE = "https://auth.example.com/oauth2/authorize?"


@dataclass
class Request:
    send: Callable[[], Answer]
    succeeded: Callable[[Answer], None]
    # Dependencies whose failure leaves the answer unchanged (a best-effort clean-up).
    best_effort: frozenset[str] = frozenset()


Scenario = Callable[[Kit], Request]


def _json(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer["body"])
    return body


def _location(answer: Answer) -> str:
    assert answer["statusCode"] == 302, answer["body"]
    return str(answer["headers"]["Location"])


def authorize(kit: Kit) -> Request:
    ev = kit.authorize_event()
    return Request(
        lambda: kit.call(kit.authorization, ev), lambda a: _assert(_location(a).startswith(COGNITO_AUTHORIZE))
    )


def _after_restart(kit: Kit, started: Answer, answer: Answer) -> Answer:
    """Cognito's code is single use: a callback retried after it was spent restarts the
    upstream leg once (same transaction), and Cognito's session sends the browser back."""
    if answer["statusCode"] == 302 and answer["headers"]["Location"].startswith(COGNITO_AUTHORIZE):
        state = query_of(answer["headers"]["Location"])["state"]
        assert state.endswith(".1")
        return kit.call(kit.authorization, kit.callback_event(started, "code-after-restart-" + uuid.uuid4().hex, state))
    return answer


def callback(kit: Kit) -> Request:
    started = kit.started()
    ev = kit.callback_event(started, "code-" + uuid.uuid4().hex)

    def succeeded(answer: Answer) -> None:
        page = _after_restart(kit, started, answer)
        assert page["statusCode"] == 200 and "name=csrf" in page["body"], page["body"]
        done = kit.call(kit.authorization, kit.consent_event(started, page))
        _redeems(kit, query_of(_location(done))["code"])

    return Request(lambda: kit.call(kit.authorization, ev), succeeded)


def callback_remembered(kit: Kit) -> Request:
    started = kit.remembered()
    ev = kit.callback_event(started, "code-" + uuid.uuid4().hex)

    def succeeded(answer: Answer) -> None:
        location = _location(_after_restart(kit, started, answer))
        assert location.startswith(CONF_REDIRECT + "?code=")

    return Request(lambda: kit.call(kit.authorization, ev), succeeded)


def consent_approve(kit: Kit) -> Request:
    started, page = kit.consent_page()
    ev = kit.consent_event(started, page)
    return Request(lambda: kit.call(kit.authorization, ev), lambda a: _redeems(kit, query_of(_location(a))["code"]))


def consent_deny(kit: Kit) -> Request:
    started, page = kit.consent_page()
    ev = kit.consent_event(started, page, "deny")

    def succeeded(answer: Answer) -> None:
        assert query_of(_location(answer))["error"] == "access_denied"

    # Revoking Cognito's session after a denial is a clean-up: nothing was issued from it.
    return Request(lambda: kit.call(kit.authorization, ev), succeeded, frozenset({"cognito"}))


def _redeems(kit: Kit, code: str) -> dict[str, Any]:
    answer = kit.call(kit.token, kit.code_event(code))
    assert answer["statusCode"] == 200, answer["body"]
    tokens = _json(answer)
    _works(kit, tokens)
    return tokens


def _works(kit: Kit, tokens: dict[str, Any]) -> None:
    """The pair is live: /mcp accepts the access token, the refresh token refreshes."""
    assert kit.mcp(tokens["access_token"], "tools/list").status_code == 200
    refreshed = kit.call(
        kit.token, kit.token_event({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    )
    assert refreshed["statusCode"] == 200, refreshed["body"]


def token_code(kit: Kit) -> Request:
    ev = kit.code_event(kit.code())

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 200, answer["body"]
        _works(kit, _json(answer))

    return Request(lambda: kit.call(kit.token, ev), succeeded)


def code_replay(kit: Kit) -> Request:
    """A redeemed code presented with another verifier: a replay (RFC 6749 section 4.1.2)."""
    code = kit.code()
    tokens = _json(kit.call(kit.token, kit.code_event(code)))
    grant_id = str(jwt.get_unverified_claims(tokens["access_token"])["origin_jti"])
    replay = kit.code_event(code)
    replay["body"] = replay["body"].replace("code_verifier=", "code_verifier=x")

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 400 and _json(answer)["error"] == "invalid_grant"
        grant = kit.grants.get(grant_id)
        assert grant is not None and grant.status == "revoked" and grant.revoked_reason == "code_replay"
        head = kit.rts.get(sha256_hex(tokens["refresh_token"]))
        assert head is not None and head.status == "revoked"
        assert kit.mcp(tokens["access_token"], "tools/list").status_code == 401

    # Revoking Cognito's token is left pending on the revoked grant when KMS or Cognito
    # fail (a later /revoke finishes it); the replay is refused either way.
    return Request(lambda: kit.call(kit.token, replay), succeeded, frozenset({"kms", "cognito"}))


def token_refresh(kit: Kit) -> Request:
    tokens = kit.tokens()
    ev = kit.token_event({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 200, answer["body"]
        _works(kit, _json(answer))

    return Request(lambda: kit.call(kit.token, ev), succeeded)


def _revoke(kind: str) -> Scenario:
    def scenario(kit: Kit) -> Request:
        tokens = kit.tokens()
        grant_id = str(jwt.get_unverified_claims(tokens["access_token"])["origin_jti"])
        upstream = next(rt for rt, origin in kit.cognito.sessions.items() if origin == grant_id)
        ev = kit.revoke_event(tokens[kind])

        def succeeded(answer: Answer) -> None:
            # RFC 7009 section 2.2: 200 only once the revocation is complete, Cognito included.
            assert answer["statusCode"] == 200, answer["body"]
            grant = kit.grants.get(grant_id)
            assert grant is not None and grant.status == "revoked" and grant.upstream_refresh is None
            assert upstream in kit.cognito.revoked
            head = kit.rts.get(sha256_hex(tokens["refresh_token"]))
            assert head is not None and head.status == "revoked"
            assert kit.mcp(tokens["access_token"], "tools/list").status_code == 401

        return Request(lambda: kit.call(kit.token, ev), succeeded)

    scenario.__name__ = f"revoke_{kind}"
    return scenario


def _mcp(method: str, params: dict[str, Any] | None) -> Scenario:
    def scenario(kit: Kit) -> Request:
        access = kit.tokens()["access_token"]

        def send() -> Answer:
            resp = kit.mcp(access, method, params)
            return {"statusCode": resp.status_code, "headers": dict(resp.headers), "body": resp.text}

        def succeeded(answer: Answer) -> None:
            assert answer["statusCode"] == 200, answer["body"]
            assert "error" not in _json(answer) and not _json(answer)["result"].get("isError")

        return Request(send, succeeded)

    scenario.__name__ = "mcp_" + (params or {}).get("name", method.replace("/", "_"))
    return scenario


SCENARIOS: tuple[Scenario, ...] = (
    authorize,  # first: with token_refresh, the matrix test reaches every dependency early
    callback,
    callback_remembered,
    consent_approve,
    consent_deny,
    token_code,
    code_replay,
    token_refresh,
    _revoke("refresh_token"),
    _revoke("access_token"),
    _mcp("tools/list", None),
    _mcp("tools/call", {"name": "add_note", "arguments": {"title": "fault"}}),
    _mcp("tools/call", {"name": "list_notes", "arguments": {}}),
)


def _assert(condition: bool) -> None:
    assert condition


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Aws, Faults]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    try:
        with mock_aws():
            faults = Faults()
            yield Aws(faults), faults
    finally:
        mp.undo()


@pytest.fixture
def kit(aws: tuple[Aws, Faults]) -> Kit:
    """The handlers on fresh tables."""
    return Kit(*aws)


def _unavailable(answer: Answer) -> bool:
    headers = {k.lower(): v for k, v in answer["headers"].items()}
    return answer["statusCode"] == 503 and int(headers.get("retry-after", "0")) > 0


@pytest.mark.parametrize("dependency", DEPENDENCIES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_failed_call_is_503_and_the_identical_retry_succeeds(
    kit: Kit, scenario: Scenario, dependency: str
) -> None:
    kit.faults.arm(None)
    probe = scenario(kit)
    kit.faults.arm(None)
    answer = probe.send()
    calls = kit.faults.calls[dependency]
    probe.succeeded(answer)
    for n in range(1, calls + 1):
        kit.faults.arm(None)
        request = scenario(kit)
        kit.faults.arm(dependency, n)
        failed = request.send()
        assert kit.faults.fired, f"call {n} of {dependency} was not made"
        kit.faults.arm(None)
        if dependency in request.best_effort and failed["statusCode"] != 503:
            request.succeeded(failed)  # answered as without the fault: nothing to retry
            continue
        assert _unavailable(failed), (n, failed["statusCode"], failed["body"][:300])
        request.succeeded(request.send())  # the identical request, after recovery


def test_the_matrix_reaches_every_dependency(kit: Kit) -> None:
    reached: set[str] = set()
    for scenario in SCENARIOS:
        kit.faults.arm(None)
        request = scenario(kit)
        kit.faults.arm(None)
        answer = request.send()
        reached |= {dep for dep, count in kit.faults.calls.items() if count}
        request.succeeded(answer)
        if reached >= set(DEPENDENCIES):
            break
    assert reached >= set(DEPENDENCIES), reached
