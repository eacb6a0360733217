"""The connected-agents page's cookies, CSRF token, state and HTML (no AWS)."""

from __future__ import annotations

import pytest

from functions.authorization import account_pages
from functions.authorization.account_pages import AgentView, agents_page, human_time
from functions.authorization.account_session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    AccountCookies,
    Session,
    cookie_name,
    state_matches,
    state_nonce,
)
from functions.authorization.web import set_cookie
from functions.core.cognito.gateway_secret import StaticSecret
from tests.facade_fakes import GATEWAY_SECRET, Facade, to_consent_page

NOW = 1_800_000_000
COOKIES = AccountCookies(StaticSecret(GATEWAY_SECRET))


def _session(**kw: object) -> Session:
    values: dict[str, object] = {"sub": "sub-alice", "expires_at": NOW + 900, "nonce": "n0nce", "email": "a.b@ex.com"}
    values.update(kw)
    return Session(**values)  # type: ignore[arg-type]


def test_session_cookie_round_trips_and_expires() -> None:
    session = _session(email="ä.ö@例え.jp")
    value = COOKIES.session_value(session)
    assert COOKIES.session(value, NOW) == session
    assert COOKIES.session(value, NOW + 900) is None  # expiry is exclusive (epoch seconds)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: "sub-bob" + v[len("sub-alice") :],  # another sub under the same MAC
        lambda v: v.replace(str(NOW + 900), str(NOW + 99999)),  # a longer life
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # a changed tag
        lambda v: v.rpartition(".")[0],  # no tag
        lambda v: v + "x" * 600,  # oversized
        lambda v: "",
    ],
)
def test_a_tampered_session_cookie_is_no_session(tamper: object) -> None:
    value = COOKIES.session_value(_session())
    assert COOKIES.session(tamper(value), NOW) is None  # type: ignore[operator]


def test_cookies_are_bound_to_the_gateway_secret_and_their_purpose() -> None:
    value = COOKIES.session_value(_session())
    assert AccountCookies(StaticSecret("another-secret")).session(value, NOW) is None
    # A sign-in cookie value is never a session, nor the reverse (the MAC input names its purpose).
    sign_in = COOKIES.sign_in_value("sub-alice.1900000000.n0nce.YQ")
    assert COOKIES.session(sign_in, NOW) is None
    assert COOKIES.sign_in_nonce(value) is None
    assert COOKIES.sign_in_nonce(COOKIES.sign_in_value("abc")) == "abc"
    assert COOKIES.sign_in_nonce(None) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    session = _session()
    token = COOKIES.csrf_token(session)
    assert COOKIES.csrf_ok(session, token)
    assert not COOKIES.csrf_ok(_session(nonce="other"), token)
    assert not COOKIES.csrf_ok(session, "")
    assert not COOKIES.csrf_ok(session, token + "é")  # non-ASCII: a mismatch, not an exception
    assert not AccountCookies(StaticSecret("another-secret")).csrf_ok(session, token)


def test_account_state_is_recognised_and_compared() -> None:
    assert state_nonce("account.abc") == "abc"
    assert state_nonce("account.") is None
    assert state_nonce("abcdef") is None  # an agent's transaction id (base64url, no dots)
    assert state_matches("account.abc", "abc")
    assert not state_matches("account.abd", "abc")
    assert not state_matches("account.abcé", "abc")


def test_cookies_are_host_only_httponly_secure_lax() -> None:
    for names in (SIGN_IN_COOKIE, SESSION_COOKIE):
        header = set_cookie(cookie_name(names, secure=True), "v", 900, secure=True)
        # RFC 6265bis section 4.1.3.2: __Host- needs Secure, Path=/ and no Domain.
        assert header.startswith("__Host-mcpkit_account") and "Domain" not in header
        assert header.endswith("Path=/; Max-Age=900; HttpOnly; SameSite=Lax; Secure")
        local = set_cookie(cookie_name(names, secure=False), "v", 900, secure=False)
        assert local.startswith("mcpkit_account") and "Secure" not in local


def _agent(**kw: object) -> AgentView:
    values: dict[str, object] = {
        "grant_id": "g-1",
        "agent_name": "Agent",
        "agent_id": "agent-1",
        "cimd": False,
        "registered": True,
        "scopes": (("notes:read", "Read your notes"),),
        "granted_at": NOW,
        "last_used_at": None,
        "expires_at": NOW + 86400,
    }
    values.update(kw)
    return AgentView(**values)  # type: ignore[arg-type]


def test_page_escapes_and_isolates_client_names_and_marks_them_unverified() -> None:
    evil = "<script>x</script>\u202egnp.exe"
    page = agents_page(server_name="Kit", user="a@ex.com", agents=(_agent(agent_name=evil),), csrf="c", notice=None)
    assert "<script>x" not in page.body and "&lt;script&gt;x&lt;/script&gt;" in page.body
    assert "\u202e" not in page.body
    assert "<bdi>&lt;script&gt;" in page.body and "unverified name" in page.body
    assert "App id: <code><bdi>agent-1</bdi></code>" in page.body
    assert "Last used never" in page.body and "Granted 15 Jan 2027, 08:00 UTC" in page.body


def test_page_shows_the_cimd_host_and_a_gone_registration() -> None:
    page = agents_page(
        server_name="Kit",
        user="",
        agents=(_agent(cimd=True, agent_id="agent.example.net", registered=False),),
        csrf="c",
        notice=None,
    )
    assert "Web site: <code><bdi>agent.example.net</bdi></code>" in page.body and "no longer registered" in page.body
    assert "Signed in as" not in page.body


def test_page_forms_carry_the_csrf_token_and_post_only_here() -> None:
    page = agents_page(server_name="Kit", user="u", agents=(_agent(), _agent(grant_id="g-2")), csrf="tok", notice=None)
    assert page.body.count('name=csrf value="tok"') == 3  # two revoke forms and revoke-all
    assert 'action="/account/agents/revoke"' in page.body and 'action="/account/agents/revoke-all"' in page.body
    assert 'name=grant_id value="g-2"' in page.body
    csp = page.headers["Content-Security-Policy"]
    assert "form-action 'self';" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert '<meta name=viewport content="width=device-width,initial-scale=1">' in page.body


@pytest.mark.parametrize("notice", ["<script>", "revoked<b>", "other", "", None])
def test_only_known_notices_are_shown_and_nothing_is_reflected(notice: str | None) -> None:
    page = agents_page(server_name="Kit", user="u", agents=(), csrf="c", notice=notice)
    assert "id=notice" not in page.body and "<script>" not in page.body
    assert "No app has access to your account." in page.body and "revoke-all" not in page.body


def test_known_notice_is_a_status_message() -> None:
    page = agents_page(server_name="Kit", user="u", agents=(), csrf="c", notice="revoked")
    assert f"<p class=note id=notice role=status>{account_pages.NOTICES['revoked']}</p>" in page.body


def test_human_time_is_utc() -> None:
    assert human_time(0) == "01 Jan 1970, 00:00 UTC"
    assert human_time(None) == "never"


def test_consent_page_links_to_the_connected_agents_page() -> None:
    _, page = to_consent_page(Facade())
    assert '<a id=account-agents href="/account/agents">connected apps page</a>' in page.body
