"""The connected-agents page through the real authorization handler, against moto and the Cognito emulator.

Sign-in (cookie-bound, single-use state; scope openid email; PKCE), listing, revoke one,
revoke all, CSRF, session checks, and what a revocation does: /mcp refuses the token,
Cognito's refresh token is revoked and the next authorization shows the consent page.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jose import jwt

from functions.authorization.account import AccountService, Cookies
from functions.authorization.account_session import AccountCookies, DynamoAccountSignIns, Session
from functions.core.clients.cimd_fetch import CimdUnavailable
from functions.core.cognito.gateway_secret import StaticSecret, gateway_pkce_verifier
from functions.core.cognito.token_cipher import grant_context
from functions.core.platform.crypto import s256
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.state.consent import DynamoConsentRepository
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grant_index import DynamoGrantIndex
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
from functions.core.state.revocation import GrantRevoker
from local.config import ARTEFACTS_TABLE, GRANTS_TABLE
from tests.facade_fakes import (
    CONF_REDIRECT,
    VERIFIER,
    FakeCipher,
    FakeCognito,
    FakeResolver,
    confidential_client,
    public_client,
    query_of,
)
from tests.facade_fakes import Facade as FakeFacade
from tests.helpers import grant
from tests.integration.facade_flow import (
    Facade,
    code_for,
    emulator_login,
    exchange,
    invoke,
    mcp_tools,
    origin_jti,
    sign_in_confidential,
)

PAGE = "/account/agents"


class RecordingResolver(FakeResolver):
    """The facade's fake client resolver, remembering every client id it was asked for."""

    def __init__(self, *clients: Any) -> None:
        super().__init__(*clients)
        self.asked: list[str] = []
        self.unavailable: set[str] = set()  # client ids whose metadata document cannot be fetched now

    def resolve(self, client_id: str) -> Any:
        self.asked.append(client_id)
        if client_id in self.unavailable:
            raise CimdUnavailable("document fetch timed out")
        return super().resolve(client_id)


@dataclasses.dataclass
class Account:
    facade: Facade
    service: AccountService
    resolver: RecordingResolver


@pytest.fixture(scope="module")
def account(facade: Facade) -> Account:
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler
    import functions.token.api as token_api
    import functions.token.handler as token_handler

    settings = facade.settings
    resolver = RecordingResolver(public_client(), confidential_client(method="client_secret_post"))
    authorization = authorization_handler.build_service(settings, resolver)
    service = authorization_handler.build_account(settings, resolver)
    token = token_handler.build_service(settings, resolver)
    return Account(
        dataclasses.replace(
            facade,
            authorization=authorization_api.make_handler(lambda: authorization, lambda: service),
            token=token_api.make_handler(lambda: token),
        ),
        service,
        resolver,
    )


def _cookie(answer: dict[str, Any], name: str) -> str:
    (found,) = [c for c in answer.get("cookies", []) if c.startswith(name + "=")]
    return found


def start_sign_in(acc: Account) -> tuple[str, str]:
    """GET the page without a session: (sign-in cookie pair, Cognito authorize URL)."""
    answer = invoke(acc.facade.authorization, "GET", PAGE)
    assert answer["statusCode"] == 302, answer["body"]
    return _cookie(answer, "mcpkit_account_signin").split(";")[0], answer["headers"]["Location"]


def page_session(acc: Account, email: str) -> str:
    """Sign in to the page as ``email``; the session cookie pair."""
    signin, location = start_sign_in(acc)
    back = emulator_login(location, email)
    answer = invoke(acc.facade.authorization, "GET", "/oauth/callback", query=query_of(back), cookie=signin)
    assert answer["statusCode"] == 303 and answer["headers"]["Location"] == acc.facade.settings.base_url + PAGE
    return _cookie(answer, "mcpkit_account").split(";")[0]


def show(acc: Account, session: str, **query: str) -> dict[str, Any]:
    answer = invoke(acc.facade.authorization, "GET", PAGE, query=query, cookie=session)
    assert answer["statusCode"] == 200, answer["body"]
    return answer


def post(acc: Account, path: str, form: dict[str, str], cookie: str | None = None) -> dict[str, Any]:
    return invoke(acc.facade.authorization, "POST", path, form=form, cookie=cookie)


def csrf_of(body: str) -> str:
    return body.split('name=csrf value="')[1].split('"')[0]


def connect(acc: Account, email: str) -> dict[str, Any]:
    """Alice's agent (the public client) connected through the real flow: the token response."""
    status, body = exchange(acc.facade, code_for(acc.facade, email))
    assert status == 200, body
    return body


def test_sign_in_is_the_kits_own_pkce_request_for_openid_email_only(account: Account) -> None:
    signin, location = start_sign_in(account)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["scope"] == "openid email"  # no kit scope: the token authorizes no tool
    assert params["state"].startswith("account.") and params["code_challenge_method"] == "S256"
    assert params["client_id"] == account.facade.settings.gateway_client_id
    assert params["redirect_uri"] == account.facade.settings.base_url + "/oauth/callback"
    secret = account.service._secret  # the derived verifier is recomputable, never stored
    assert params["code_challenge"] == s256(gateway_pkce_verifier(secret, params["state"]))
    answer = invoke(account.facade.authorization, "GET", PAGE)
    set_cookie = _cookie(answer, "mcpkit_account_signin")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
    assert "Max-Age=600" in set_cookie and signin.startswith("mcpkit_account_signin=")


def test_callback_needs_the_cookie_that_bound_the_state_and_is_single_use(account: Account) -> None:
    signin, location = start_sign_in(account)
    back = query_of(emulator_login(location, "alice@example.com"))
    other_signin, _ = start_sign_in(account)
    # Another browser's cookie, or none: refused before Cognito's code is spent.
    for cookie in (other_signin, None):
        refused = invoke(account.facade.authorization, "GET", "/oauth/callback", query=back, cookie=cookie)
        assert refused["statusCode"] == 400 and "does not belong to this browser" in refused["body"]
        assert not refused.get("cookies")
    done = invoke(account.facade.authorization, "GET", "/oauth/callback", query=back, cookie=signin)
    assert done["statusCode"] == 303
    set_session = _cookie(done, "mcpkit_account")
    assert "HttpOnly" in set_session and "SameSite=Lax" in set_session and "Max-Age=900" in set_session
    # The same callback again: Cognito's code is spent, so the page starts a new sign-in.
    again = invoke(account.facade.authorization, "GET", "/oauth/callback", query=back, cookie=signin)
    assert again["statusCode"] == 302 and not any(c.startswith("mcpkit_account=") for c in again["cookies"])


def test_a_used_sign_in_cannot_be_used_again_even_with_a_new_code(account: Account) -> None:
    """The ACCOUNT# item is consumed by a conditional update: one session per sign-in."""
    signin, location = start_sign_in(account)
    first = query_of(emulator_login(location, "alice@example.com"))
    second = query_of(emulator_login(location, "alice@example.com"))  # Cognito issues a second code
    assert (
        invoke(account.facade.authorization, "GET", "/oauth/callback", query=first, cookie=signin)["statusCode"] == 303
    )
    replay = invoke(account.facade.authorization, "GET", "/oauth/callback", query=second, cookie=signin)
    assert replay["statusCode"] == 400 and "already used" in replay["body"]
    assert not any(c.startswith("mcpkit_account=") for c in replay.get("cookies", []))


def test_agent_sign_ins_still_use_the_agent_flow(account: Account) -> None:
    body = connect(account, "alice@example.com")
    assert mcp_tools(account.facade, body["access_token"])[0] == 200


def test_page_lists_active_grants_with_names_scopes_and_dates(account: Account) -> None:
    body = connect(account, "alice@example.com")
    grant_id = origin_jti(body["access_token"])
    bob = connect(account, "bob@example.com")  # someone else's: never shown to alice
    page = show(account, page_session(account, "alice@example.com"))
    html = page["body"]
    assert f'data-grant="{grant_id}"' in html
    assert "<bdi>Agent &lt;b&gt;Smith&lt;/b&gt;</bdi> <span class=tag>unverified name</span>" in html
    assert "unverified" in html and "App id: <code><bdi>public-agent</bdi></code>" in html
    assert "<code>notes:write</code>: Write and archive your notes" in html
    assert "Granted " in html and "Last used " in html and "Expires " in html and " UTC" in html
    assert "Signed in as <strong><bdi id=user>alice@example.com</bdi>" in html
    bob_grants = [g.grant_id for g in DynamoGrantIndex(GRANTS_TABLE).grants_of_user(_sub(bob))]
    assert bob_grants and not any(f'data-grant="{g}"' in html for g in bob_grants)
    headers = page["headers"]
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "form-action 'self';" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"


def test_page_names_each_agent_as_its_grant_recorded_it(account: Account) -> None:
    sub = _sub(connect(account, "bob@example.com"))
    repo = DynamoGrantRepository(GRANTS_TABLE)
    renamed, old, gone = (f"origin-{uuid.uuid4().hex[:10]}" for _ in range(3))
    # Recorded at approval, though the client's record now says "Agent <b>Smith</b>".
    repo.create(grant(renamed, sub, client_id="public-agent", client_name="Renamed Agent"))
    repo.create(grant(old, sub, client_id="conf-agent"))  # schema version 2: no name recorded
    repo.create(grant(gone, sub, client_id="gone-agent", client_name="Gone Agent"))  # registration deleted
    html = show(account, page_session(account, "bob@example.com"))["body"]

    def card(grant_id: str) -> str:
        start = html.index(f'data-grant="{grant_id}"')
        return html[start : html.index("</section>", start)]

    assert "<bdi>Renamed Agent</bdi>" in card(renamed)
    assert "<bdi>Confidential agent</bdi>" in card(old)  # falls back to the client's record
    assert "<bdi>Gone Agent</bdi>" in card(gone)


def test_a_cimd_agent_is_shown_as_its_grant_recorded_it_without_fetching_its_document(account: Account) -> None:
    # A CIMD client has no registration: its grant alone governs it (/mcp fetches nothing), so the
    # page fetches no agent-controlled URL for a grant that recorded the name, and an unreachable
    # document (the fake resolver knows no CIMD client) never reads "no longer registered".
    sub = _sub(connect(account, "bob@example.com"))
    named, unnamed = (f"origin-{uuid.uuid4().hex[:10]}" for _ in range(2))
    named_client, unnamed_client = "https://agent.example.net/client.json", "https://old.example.org/agent.json"
    repo = DynamoGrantRepository(GRANTS_TABLE)
    repo.create(grant(named, sub, client_id=named_client, client_name="Web Agent"))
    repo.create(grant(unnamed, sub, client_id=unnamed_client))  # schema version 2: no name recorded
    account.resolver.asked.clear()
    html = show(account, page_session(account, "bob@example.com"))["body"]

    def card(grant_id: str) -> str:
        start = html.index(f'data-grant="{grant_id}"')
        return html[start : html.index("</section>", start)]

    assert "<bdi>Web Agent</bdi>" in card(named) and "Web site: <code><bdi>agent.example.net</bdi>" in card(named)
    assert "<bdi>old.example.org</bdi> <span class=tag>unverified name</span>" in card(unnamed)
    assert "no longer registered" not in card(named) + card(unnamed)
    assert named_client not in account.resolver.asked
    assert unnamed_client in account.resolver.asked  # only for the name a version 2 grant lacks


def test_the_page_works_when_a_cimd_agents_document_cannot_be_fetched_now(account: Account) -> None:
    # A transient failure (CimdUnavailable: the host timed out) costs the card the agent's name,
    # never the page (no 503, no 500) and never a "no longer registered" or a hidden revoke button.
    sub = _sub(connect(account, "bob@example.com"))
    unnamed, client_id = f"origin-{uuid.uuid4().hex[:10]}", "https://down.example.org/agent.json"
    DynamoGrantRepository(GRANTS_TABLE).create(grant(unnamed, sub, client_id=client_id))  # no name recorded
    account.resolver.unavailable.add(client_id)
    try:
        html = show(account, page_session(account, "bob@example.com"))["body"]
    finally:
        account.resolver.unavailable.discard(client_id)
    start = html.index(f'data-grant="{unnamed}"')
    card = html[start : html.index("</section>", start)]
    assert "<bdi>down.example.org</bdi> <span class=tag>unverified name</span>" in card
    assert "no longer registered" not in card and "Revoke" in card
    assert client_id in account.resolver.asked


def _sub(token_response: dict[str, Any]) -> str:
    return str(jwt.get_unverified_claims(token_response["access_token"])["sub"])


def test_revoke_one_bites_at_mcp_upstream_and_consent(account: Account) -> None:
    # A confidential https client: its remembered consent would skip the page next time.
    cookie, page = sign_in_confidential(account.facade, "alice@example.com")
    assert page["statusCode"] == 200
    csrf = csrf_of(page["body"])
    done = post(account, "/consent", {"csrf": csrf, "decision": "approve"}, cookie)
    code = query_of(done["headers"]["Location"])["code"]
    _, skipped = sign_in_confidential(account.facade, "alice@example.com")
    assert skipped["statusCode"] == 302  # remembered
    grant_id = _redeem_confidential(account, code)

    session = page_session(account, "alice@example.com")
    listing = show(account, session)["body"]
    assert f'data-grant="{grant_id}"' in listing
    answer = post(account, PAGE + "/revoke", {"csrf": csrf_of(listing), "grant_id": grant_id}, session)
    assert answer["statusCode"] == 303 and answer["headers"]["Location"].endswith(PAGE + "?notice=revoked")
    assert account.facade.grants.get(grant_id).status == "revoked"  # type: ignore[union-attr]
    assert account.facade.grants.get(grant_id).upstream_refresh is None  # type: ignore[union-attr]
    after = show(account, session, notice="revoked")["body"]
    assert f'data-grant="{grant_id}"' not in after and "Access revoked." in after
    # The consent is forgotten: the next authorization of the same client shows the page.
    _, again = sign_in_confidential(account.facade, "alice@example.com")
    assert again["statusCode"] == 200 and 'name=csrf value="' in again["body"]


def _redeem_confidential(acc: Account, code: str) -> str:
    """Redeem the confidential client's code; the grant id behind its access token."""
    result = invoke(
        acc.facade.token,
        "POST",
        "/token",
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CONF_REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": "conf-agent",
            "client_secret": "s3cret",
        },
    )
    body = json.loads(result["body"])
    assert result["statusCode"] == 200, body
    return origin_jti(body["access_token"])


def test_revoke_one_token_fails_at_mcp(account: Account) -> None:
    body = connect(account, "alice@example.com")
    grant_id = origin_jti(body["access_token"])
    session = page_session(account, "alice@example.com")
    csrf = csrf_of(show(account, session)["body"])
    post(account, PAGE + "/revoke", {"csrf": csrf, "grant_id": grant_id}, session)
    assert mcp_tools(account.facade, body["access_token"])[0] == 401  # GRANT_CACHE_SECONDS=0 here


def test_revoke_needs_the_sessions_csrf_and_only_ends_own_grants(account: Account) -> None:
    alice = connect(account, "alice@example.com")
    bob = connect(account, "bob@example.com")
    alice_grant, bob_grant = origin_jti(alice["access_token"]), origin_jti(bob["access_token"])
    alice_session, bob_session = page_session(account, "alice@example.com"), page_session(account, "bob@example.com")
    bob_csrf = csrf_of(show(account, bob_session)["body"])
    alice_csrf = csrf_of(show(account, alice_session)["body"])
    # Bob's CSRF token with alice's session, a made-up one, none: 403, nothing revoked.
    for csrf in (bob_csrf, "x" * 43, ""):
        refused = post(account, PAGE + "/revoke", {"csrf": csrf, "grant_id": alice_grant}, alice_session)
        assert refused["statusCode"] == 403
    # No session at all: 403.
    no_session = post(account, PAGE + "/revoke-all", {"csrf": alice_csrf})
    assert no_session["statusCode"] == 403
    # Alice naming bob's grant: nothing happens to it.
    gone = post(account, PAGE + "/revoke", {"csrf": alice_csrf, "grant_id": bob_grant}, alice_session)
    assert gone["headers"]["Location"].endswith("?notice=gone")
    for grant_id in (alice_grant, bob_grant):
        assert account.facade.grants.get(grant_id).status == "active"  # type: ignore[union-attr]


def test_an_overlong_grant_id_is_gone_without_a_read(account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    # DynamoDB refuses a partition key over 2,048 bytes (moto does not): such an id must not
    # reach the table, or bad input would be answered 503 (a ValidationException).
    alice = connect(account, "alice@example.com")
    session = page_session(account, "alice@example.com")
    csrf = csrf_of(show(account, session)["body"])
    read: list[str] = []
    real_get = account.service._grants.get
    monkeypatch.setattr(account.service._grants, "get", lambda grant_id: read.append(grant_id) or real_get(grant_id))
    for grant_id in ("x" * 2100, "\U0001f600" * 600):
        answer = post(account, PAGE + "/revoke", {"csrf": csrf, "grant_id": grant_id}, session)
        assert answer["statusCode"] == 303 and answer["headers"]["Location"].endswith("?notice=gone")
    assert read == []
    assert account.facade.grants.get(origin_jti(alice["access_token"])).status == "active"  # type: ignore[union-attr]


def test_the_pages_production_wiring_looks_clients_up_without_renewing_them(
    facade: Facade, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.authorization.handler as authorization_handler
    from functions.core.clients import resolver as client_resolver

    made: list[dict[str, Any]] = []
    real = client_resolver.make_client_resolver
    monkeypatch.setattr(
        client_resolver, "make_client_resolver", lambda settings, **kw: made.append(kw) or real(settings, **kw)
    )
    authorization_handler.build_account(facade.settings)
    authorization_handler.build_service(facade.settings)
    assert made == [{"touch": False}, {}]  # the page only looks; /authorize is the client acting


def test_revoke_all_ends_every_grant_of_the_person_only(account: Account) -> None:
    mine = [origin_jti(connect(account, "alice@example.com")["access_token"]) for _ in range(2)]
    bobs = origin_jti(connect(account, "bob@example.com")["access_token"])
    session = page_session(account, "alice@example.com")
    csrf = csrf_of(show(account, session)["body"])
    answer = post(account, PAGE + "/revoke-all", {"csrf": csrf}, session)
    assert answer["statusCode"] == 303 and answer["headers"]["Location"].endswith("?notice=revoked_all")
    for grant_id in mine:
        assert account.facade.grants.get(grant_id).status == "revoked"  # type: ignore[union-attr]
    assert account.facade.grants.get(bobs).status == "active"  # type: ignore[union-attr]
    assert "No app has access to your account." in show(account, session)["body"]


def test_a_forged_or_expired_session_is_a_new_sign_in(account: Account) -> None:
    alice, bob = connect(account, "alice@example.com"), connect(account, "bob@example.com")
    session = page_session(account, "alice@example.com")
    name, _, value = session.partition("=")
    sub, rest = value.split(".", 1)
    forged = f"{name}={_sub(bob)}.{rest}"  # bob's sub under alice's MAC
    assert invoke(account.facade.authorization, "GET", PAGE, cookie=forged)["statusCode"] == 302
    clock = account.service._clock
    try:
        account.service._clock = lambda: clock() + 901  # type: ignore[method-assign]
        assert invoke(account.facade.authorization, "GET", PAGE, cookie=session)["statusCode"] == 302
    finally:
        account.service._clock = clock  # type: ignore[method-assign]
    assert sub == _sub(alice)


def test_a_revocation_cognito_failed_is_finished_by_sending_the_form_again(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every 503 is safe to retry: the grant is revoked at once, Cognito's token on the retry."""
    cipher, cognito = FakeCipher(), FakeCognito()
    grants, consents = DynamoGrantRepository(GRANTS_TABLE), DynamoConsentRepository(GRANTS_TABLE)
    revoker = GrantRevoker(
        grants=grants,
        refresh_tokens=DynamoRefreshTokenRepository(GRANTS_TABLE),
        consents=consents,
        cipher=cipher,
        cognito=cognito,
    )
    secret = StaticSecret("retry-secret")
    service = AccountService(
        account.facade.settings,
        admin=GrantAdministration(index=DynamoGrantIndex(GRANTS_TABLE), revoker=revoker, consents=consents),
        grants=grants,
        clients=FakeResolver(public_client()),
        sign_ins=DynamoAccountSignIns(ARTEFACTS_TABLE),
        cognito=cognito,
        secret=secret,
        verifier=FakeFacade().verifier(),
    )
    sub, grant_id = f"sub-{uuid.uuid4().hex[:8]}", f"origin-{uuid.uuid4().hex[:8]}"
    upstream = cipher.encrypt(b"cognito-rt-retry", grant_context(grant_id))
    grants.create(grant(grant_id, sub, client_id="public-agent", upstream_refresh=upstream))
    session = Session(sub, int(time.time()) + 900, "nonce")
    cookies = Cookies(None, AccountCookies(secret).session_value(session))
    form = {"csrf": AccountCookies(secret).csrf_token(session), "grant_id": grant_id}

    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    cognito.fail = True
    with pytest.raises(DependencyError):  # the handler answers 503 + Retry-After
        service.revoke(form, cookies)
    stored = grants.get(grant_id)
    assert stored is not None and stored.status == "revoked" and stored.upstream_revocation_pending
    (event,) = [json.loads(line)["audit"] for line in log.getvalue().splitlines() if '"audit"' in line]
    assert event["action"] == "grant.revoked" and event["actor"] == "user" and event["reason"] == "user_revoked"
    assert event["sub"] == sub and event["grant_id"] == grant_id and "cognito-rt" not in log.getvalue()

    cognito.fail = False
    again = service.revoke(form, cookies)
    assert again.status == 303 and again.headers["Location"].endswith("?notice=revoked")
    assert cognito.revoked == ["cognito-rt-retry"]
    assert grants.get(grant_id).upstream_refresh is None  # type: ignore[union-attr]
    # Nothing is left to do: the form once more says so and calls nobody.
    assert service.revoke(form, cookies).headers["Location"].endswith("?notice=gone")
    assert cognito.revoked == ["cognito-rt-retry"]


def test_without_the_by_user_index_every_route_says_so_and_changes_nothing(account: Account) -> None:
    """kit:grantIndexes without by_user (mid-upgrade): a clear 503 page, never an empty list, no sign-in."""
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler

    mine = origin_jti(connect(account, "alice@example.com")["access_token"])
    session = page_session(account, "alice@example.com")
    csrf = csrf_of(show(account, session)["body"])
    settings = account.facade.settings.model_copy(update={"grant_indexes": ("by_client",)})
    halfway = authorization_handler.build_account(settings, FakeResolver(public_client()))
    router = authorization_api.make_handler(lambda: authorization_handler.build_service(settings), lambda: halfway)

    for answer in (
        invoke(router, "GET", PAGE),  # no session: no Cognito sign-in either
        invoke(router, "GET", PAGE, cookie=session),
        invoke(router, "POST", PAGE + "/revoke", form={"csrf": csrf, "grant_id": mine}, cookie=session),
        invoke(router, "POST", PAGE + "/revoke-all", form={"csrf": csrf}, cookie=session),
    ):
        assert answer["statusCode"] == 503 and "Location" not in answer["headers"]
        assert "not deployed yet" in answer["body"] and "No app has access" not in answer["body"]
    assert account.facade.grants.get(mine).status == "active"  # type: ignore[union-attr]
