"""GET /oauth/callback and POST /consent: binding, upstream exchange, ceilings, the page, the decision."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from functions.authorization.api import make_handler
from functions.core.clients.metadata import MAX_NAME_LENGTH
from functions.core.cognito.gateway_secret import StaticSecret, gateway_pkce_verifier
from functions.core.cognito.token_cipher import grant_context, txn_context
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import DependencyError
from functions.core.state.consent import MAX_CONSENTED_REDIRECTS, Consent, redirect_proves_client
from tests.facade_fakes import (
    CIMD_ID,
    CONF_REDIRECT,
    GATEWAY_SECRET,
    PUBLIC_REDIRECT,
    Facade,
    FakeResolver,
    Started,
    User,
    approve,
    authorize_params,
    cimd_client,
    confidential_client,
    csrf_of,
    public_client,
    query_of,
    start,
)
from tests.helpers import BASE_URL, FakeContext


@pytest.fixture
def facade() -> Facade:
    return Facade()


def callback(facade: Facade, started: Started, **params: str) -> Any:
    values = {"code": "cognito-code", "state": started.txn_id, **params}
    return facade.authorization().callback(values, started.cookie)


def to_consent_page(facade: Facade, **overrides: str | None) -> tuple[Started, Any]:
    started = start(facade, **overrides)
    page = callback(facade, started)
    assert page.status == 200, page.body
    return started, page


# --------------------------------------------------------------------------- callback binding
@pytest.mark.parametrize("cookie", [None, "", "garbage", "abc.def"])
def test_callback_without_a_valid_cookie_is_a_page(facade: Facade, cookie: str | None) -> None:
    started = start(facade)
    answer = facade.authorization().callback({"code": "c", "state": started.txn_id}, cookie)
    assert answer.status == 400 and "Location" not in answer.headers
    assert not facade.cognito.exchanged  # the code was not even exchanged


def test_callback_state_must_equal_the_cookie_transaction(facade: Facade) -> None:
    first, second = start(facade), start(facade)
    answer = facade.authorization().callback({"code": "c", "state": second.txn_id}, first.cookie)
    assert answer.status == 400 and not facade.cognito.exchanged


def test_forged_cookie_mac_is_refused(facade: Facade) -> None:
    started = start(facade)
    forged = started.txn_id + ".AAAA"
    assert facade.authorization().callback({"code": "c", "state": started.txn_id}, forged).status == 400


def test_expired_transaction_is_refused(facade: Facade) -> None:
    started = start(facade)
    facade.clock.now += 601
    assert callback(facade, started).status == 400
    assert not facade.cognito.exchanged


def test_replayed_callback_is_refused(facade: Facade) -> None:
    started = start(facade)
    assert callback(facade, started).status == 200
    assert callback(facade, started).status == 400
    assert len(facade.cognito.exchanged) == 1


def test_cognito_error_redirects_access_denied(facade: Facade) -> None:
    started = start(facade)
    answer = facade.authorization().callback({"error": "access_denied", "state": started.txn_id}, started.cookie)
    query = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(PUBLIC_REDIRECT)
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state", BASE_URL)
    assert facade.txns.items[started.txn_id].status == "decided"


def test_code_exchange_uses_callback_url_and_the_derived_verifier(facade: Facade) -> None:
    started = start(facade)
    callback(facade, started, code="the-code")
    ((code, redirect_uri, verifier),) = facade.cognito.exchanged
    assert (code, redirect_uri) == ("the-code", BASE_URL + "/oauth/callback")
    assert verifier == gateway_pkce_verifier(StaticSecret(GATEWAY_SECRET), started.txn_id)


def test_upstream_invalid_grant_asks_cognito_once_more_then_redirects_access_denied(facade: Facade) -> None:
    # Cognito's code is single use: a callback retried after a 503 finds it spent. The kit
    # restarts the upstream leg once (same transaction, same PKCE), then gives up.
    started = start(facade)
    facade.cognito.invalid_grant = True
    again = callback(facade, started)
    assert again.status == 302
    upstream = query_of(again.headers["Location"])
    assert upstream["state"] == started.txn_id + ".1"
    assert upstream["code_challenge"] == started.upstream["code_challenge"]
    last = facade.authorization().callback({"code": "c2", "state": upstream["state"]}, started.cookie)
    assert query_of(last.headers["Location"])["error"] == "access_denied"


def test_upstream_outage_propagates_as_dependency_error(facade: Facade) -> None:
    started = start(facade)
    facade.cognito.fail = True
    with pytest.raises(DependencyError):
        callback(facade, started)


@pytest.mark.parametrize(
    ("access", "id_token"),
    [
        ({"aud": "https://other.example/mcp"}, {}),  # access token not for this resource
        ({"client_id": "another-app"}, {}),
        ({}, {"sub": "someone-else"}),  # ID token of another user
        ({}, {"aud": "another-app"}),
        ({}, {"iss": "https://evil.example"}),
    ],
)
def test_tokens_that_do_not_add_up_end_in_server_error(facade: Facade, access: dict, id_token: dict) -> None:
    facade.cognito.access_overrides, facade.cognito.id_token_overrides = access, id_token
    started = start(facade)
    query = query_of(callback(facade, started).headers["Location"])
    assert query["error"] == "server_error"
    assert facade.cognito.revoked  # Cognito's session is let go
    assert facade.txns.items[started.txn_id].status == "decided"


def test_callback_stores_user_and_encrypted_upstream_tokens(facade: Facade) -> None:
    started, _ = to_consent_page(facade)
    txn = facade.txns.items[started.txn_id]
    assert txn.status == "authenticated"
    assert (txn.sub, txn.username, txn.email, txn.groups) == ("sub-alice", "alice", "alice@example.com", ("editors",))
    assert txn.origin_jti and txn.csrf_hash
    (refresh,) = facade.cognito.sessions
    assert txn.upstream_tokens is not None and refresh.encode() not in txn.upstream_tokens
    blob = json.loads(facade.cipher.decrypt(txn.upstream_tokens, txn_context(started.txn_id)))
    assert blob["refresh_token"] == refresh


# --------------------------------------------------------------------------- ceilings
def test_scope_ceilings_limit_what_a_user_may_grant() -> None:
    facade = Facade()
    facade.cognito.user = User(sub="sub-bob", username="bob", email="bob@example.com", groups=())
    started, page = to_consent_page(facade)
    assert facade.txns.items[started.txn_id].allowed_scopes == ("notes:read",)
    assert "Not available to your account" in page.body and "notes:write" in page.body
    query = approve_page(facade, started, page)
    assert facade.codes.items[sha256_hex(query["code"])].scopes == ("notes:read",)


def test_nothing_grantable_is_access_denied() -> None:
    facade = Facade()
    facade.cognito.user = User(sub="sub-bob", username="bob", groups=())
    started = start(facade, scope="notes:write")
    query = query_of(callback(facade, started).headers["Location"])
    assert query["error"] == "access_denied"
    assert facade.cognito.revoked


# --------------------------------------------------------------------------- the page
def test_consent_page_shows_agent_scopes_user_and_is_escaped(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    body = page.body
    assert "Agent &lt;b&gt;Smith&lt;/b&gt;" in body and "<b>Smith" not in body
    assert "public-agent" in body and "an app on this computer" in body
    assert "Read your notes" in body and "Write and archive your notes" in body
    assert "alice@example.com" in body
    assert "value=approve" in body and "value=deny" in body and "name=csrf" in body


def test_consent_page_security_headers(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "form-action 'self' http://127.0.0.1:33418" in csp  # the redirect after the form post
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_consent_page_for_a_cimd_client_shows_its_host() -> None:
    facade = Facade(resolver=FakeResolver(cimd_client()))
    _, page = to_consent_page(facade, client_id=CIMD_ID, redirect_uri="https://agent.example.net/cb")
    assert "agent.example.net" in page.body and CIMD_ID not in page.body


def test_hostile_client_name_cannot_inject_markup() -> None:
    evil = public_client(client_name='"><script>alert(1)</script>')
    facade = Facade(resolver=FakeResolver(evil))
    _, page = to_consent_page(facade)
    assert "<script>" not in page.body and "&lt;script&gt;" in page.body


CONF = {"client_id": "conf-agent", "redirect_uri": CONF_REDIRECT}


def _remember(facade: Facade, client_id: str, redirect_uri: str) -> None:
    now = int(facade.clock.now)
    scopes = frozenset({"notes:read", "notes:write"})
    facade.consents.put(Consent("sub-alice", client_id, scopes, now, now, now + 99, redirect_uris=(redirect_uri,)))


def test_remembered_consent_skips_the_page_for_a_confidential_https_client(facade: Facade) -> None:
    _remember(facade, "conf-agent", CONF_REDIRECT)
    started = start(facade, **CONF)
    answer = callback(facade, started)
    assert answer.status == 302
    query = query_of(answer.headers["Location"])
    assert query["code"] and query["iss"] == BASE_URL and query["state"] == "client-state"


def test_remembered_consent_skips_the_page_for_a_cimd_client_on_its_own_host() -> None:
    facade = Facade(resolver=FakeResolver(cimd_client()))
    _remember(facade, CIMD_ID, "https://agent.example.net/cb")
    assert callback(facade, start(facade, client_id=CIMD_ID, redirect_uri="https://agent.example.net/cb")).status == 302


@pytest.mark.parametrize(
    "client",
    [
        public_client(),  # loopback
        public_client(redirect_uris=("com.example.agent:/oauth/cb",)),  # private-use scheme
        public_client(redirect_uris=("https://agent.example.org/cb",)),  # https, but public
        cimd_client(redirect_uris=("https://elsewhere.example.com/cb",)),  # CIMD, another host
        confidential_client(redirect_uris=("http://127.0.0.1:33418/cb",)),  # confidential, loopback
        confidential_client(redirect_uris=("https://127.0.0.1/cb",)),  # confidential, https loopback IP
        confidential_client(redirect_uris=("https://localhost/cb",)),  # confidential, https localhost
        cimd_client(redirect_uris=("https://agent.example.net:8443/cb",)),  # CIMD, its host, another port
    ],
)
def test_unproven_clients_always_see_the_page(client: Any) -> None:
    """RFC 8252 section 8.6: any local program can register the same public metadata (and
    gets the same client_id) or claim the loopback port / custom scheme, so a remembered
    consent must not approve it silently."""
    facade = Facade(resolver=FakeResolver(client))
    (redirect_uri,) = client.redirect_uris
    _remember(facade, client.client_id, redirect_uri)
    page = callback(facade, start(facade, client_id=client.client_id, redirect_uri=redirect_uri))
    assert page.status == 200 and "Your decision is not remembered" in page.body
    assert not facade.codes.items


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://127.0.0.1/cb",
        "https://127.1/cb",
        "https://2130706433/cb",
        "https://[::1]/cb",
        "https://10.0.0.7:8443/cb",
        "https://[2001:db8::1]/cb",
        "https://localhost/cb",
        "https://LOCALHOST./cb",
        "https://app.localhost/cb",
        "https://intranet/cb",
        "https://agent.example.org:99999/cb",
        "http://agent.example.org/cb",
        "com.example.agent:/cb",
    ],
)
def test_only_an_https_dns_name_proves_a_confidential_client(redirect_uri: str) -> None:
    # RFC 8252 sections 8.5-8.6: anyone can register a confidential client, and a native
    # app's secret is readable on its machine; only a certificate for a DNS name proves it.
    assert not redirect_proves_client(confidential_client(), redirect_uri)
    assert redirect_proves_client(confidential_client(), "https://Agent.Example.org./cb")


@pytest.mark.parametrize(
    ("redirect_uri", "proves"),
    [
        ("https://agent.example.net/cb", True),
        ("https://AGENT.example.net:443/cb", True),
        ("https://agent.example.net:8443/cb", False),  # same host, another origin
        ("http://agent.example.net/cb", False),
        ("https://other.example.net/cb", False),
        ("https://example.net/cb", False),
    ],
)
def test_a_cimd_client_is_proven_only_on_its_own_origin(redirect_uri: str, proves: bool) -> None:
    assert redirect_proves_client(cimd_client(), redirect_uri) is proves


def test_consent_not_covering_the_request_shows_the_page(facade: Facade) -> None:
    now = int(facade.clock.now)
    consent = Consent("sub-alice", "public-agent", frozenset({"notes:read"}), now, now, now + 99, (PUBLIC_REDIRECT,))
    facade.consents.put(consent)
    assert callback(facade, start(facade)).status == 200


# --------------------------------------------------------------------------- consent is bound to the redirect URI
OTHER_REDIRECT = "https://agent.example.org/elsewhere"
EVIL_REDIRECT = "https://evil.example/cb"


def test_consent_without_remembered_redirect_uris_shows_the_page(facade: Facade) -> None:
    # An item written before redirect_uris existed approves no destination (fail closed).
    now = int(facade.clock.now)
    facade.consents.put(
        Consent("sub-alice", "public-agent", frozenset({"notes:read", "notes:write"}), now, now, now + 99)
    )
    assert callback(facade, start(facade)).status == 200


def test_consent_for_one_redirect_uri_does_not_skip_the_page_for_another() -> None:
    client = confidential_client(redirect_uris=(CONF_REDIRECT, OTHER_REDIRECT))
    facade = Facade(resolver=FakeResolver(client))
    approve(facade, **CONF)  # the user approved CONF_REDIRECT
    assert facade.consents.get("sub-alice", "conf-agent").redirect_uris == (CONF_REDIRECT,)
    started, page = to_consent_page(facade, client_id="conf-agent", redirect_uri=OTHER_REDIRECT)
    assert "agent.example.org" in page.body  # the page names where the code goes
    query = approve_page(facade, started, page)
    assert query["code"]
    remembered = facade.consents.get("sub-alice", "conf-agent")
    assert remembered.redirect_uris == (CONF_REDIRECT, OTHER_REDIRECT)  # approving adds it
    for uri in (CONF_REDIRECT, OTHER_REDIRECT):
        assert callback(facade, start(facade, client_id="conf-agent", redirect_uri=uri)).status == 302


def test_shared_client_takeover_via_changed_redirect_uris_shows_the_page() -> None:
    """The review's exploit at the consent layer: the client's redirect_uris change to an
    attacker's URI (a PUT on a shared public client); the victim's remembered consent must not
    send a code there silently."""
    facade = Facade()
    approve(facade)  # the victim approved the legitimate redirect URI
    facade.resolver.clients["public-agent"] = public_client(redirect_uris=(PUBLIC_REDIRECT, EVIL_REDIRECT))
    started = start(facade, redirect_uri=EVIL_REDIRECT)
    answer = callback(facade, started)
    assert answer.status == 200 and "Location" not in answer.headers  # the consent page, no code
    assert "evil.example" in answer.body
    assert len(facade.codes.items) == 1  # only the victim's own code


def test_another_local_program_is_never_approved_silently(facade: Facade) -> None:
    # The attack: a second program registers the same public metadata (same client_id) and
    # listens on another loopback port; the person's earlier approval must not carry over.
    approve(facade)
    started = start(facade, redirect_uri="http://127.0.0.1:50123/callback")
    page = callback(facade, started)
    assert page.status == 200 and len(facade.codes.items) == 1


def test_remembered_redirect_uris_are_bounded() -> None:
    uris = tuple(f"https://agent.example.org/cb{i}" for i in range(MAX_CONSENTED_REDIRECTS + 3))
    facade = Facade(resolver=FakeResolver(public_client(redirect_uris=uris)))
    for uri in uris:
        approve(facade, redirect_uri=uri)
    remembered = facade.consents.get("sub-alice", "public-agent").redirect_uris
    assert remembered == uris[-MAX_CONSENTED_REDIRECTS:]


# --------------------------------------------------------------------------- POST /consent
def approve_page(facade: Facade, started: Started, page: Any) -> dict[str, str]:
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert answer.status == 302, answer.body
    return query_of(answer.headers["Location"])


def test_approve_records_grant_consent_and_a_hashed_short_code(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    query = approve_page(facade, started, page)
    assert (query["state"], query["iss"]) == ("client-state", BASE_URL)
    code = query["code"]
    assert len(code) >= 43 and code not in facade.codes.items  # 256 bits, stored only hashed
    record = facade.codes.items[sha256_hex(code)]
    assert record.expires_at - record.created_at <= 60
    assert (record.client_id, record.redirect_uri, record.resource) == (
        "public-agent",
        PUBLIC_REDIRECT,
        BASE_URL + "/mcp",
    )
    (grant,) = facade.grants.items.values()
    assert (grant.sub, grant.client_id, grant.email, grant.username) == (
        "sub-alice",
        "public-agent",
        "alice@example.com",
        "alice",
    )
    # Pending until the code is redeemed; it expires with the code.
    assert grant.scopes == {"notes:read", "notes:write"} and grant.status == "pending"
    assert grant.expires_at == record.expires_at
    (refresh,) = facade.cognito.sessions
    assert facade.cipher.decrypt(grant.upstream_refresh or b"", grant_context(grant.grant_id)) == refresh.encode()
    assert facade.consents.get("sub-alice", "public-agent") is not None
    assert facade.txns.items[started.txn_id].status == "decided"


def test_deny_redirects_access_denied_and_revokes_upstream(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "deny"}, started.cookie)
    query = query_of(answer.headers["Location"])
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state", BASE_URL)
    assert list(facade.cognito.sessions) == [] and len(facade.cognito.revoked) == 1
    assert not facade.grants.items and not facade.codes.items


def test_wrong_csrf_is_forbidden_and_changes_nothing(facade: Facade) -> None:
    started, _ = to_consent_page(facade)
    answer = facade.authorization().consent({"csrf": "forged", "decision": "approve"}, started.cookie)
    assert answer.status == 403
    assert facade.txns.items[started.txn_id].status == "authenticated" and not facade.grants.items


def test_consent_needs_the_cookie(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    assert facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, None).status == 400


def test_consent_is_decided_once(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    approve_page(facade, started, page)
    again = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert again.status == 400 and len(facade.codes.items) == 1


def test_consent_before_the_callback_is_refused(facade: Facade) -> None:
    started = start(facade)
    assert facade.authorization().consent({"csrf": "x", "decision": "approve"}, started.cookie).status == 400


@pytest.mark.parametrize("form", [None, {"csrf": "x"}, {"csrf": "x", "decision": "maybe"}])
def test_malformed_consent_forms(facade: Facade, form: dict | None) -> None:
    started, page = to_consent_page(facade)
    if form is not None:
        form = {**form, "csrf": csrf_of(page)}
    assert facade.authorization().consent(form, started.cookie).status == 400
    assert facade.txns.items[started.txn_id].status == "authenticated"


def test_expired_transaction_cannot_be_approved(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    facade.clock.now += 601
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert answer.status == 400 and not facade.codes.items


def test_second_authorization_remembers_consent(facade: Facade) -> None:
    approve(facade, **CONF)
    started = start(facade, **CONF)
    answer = callback(facade, started)  # no page the second time
    assert answer.status == 302
    query = query_of(answer.headers["Location"])
    assert query["code"] and len(facade.grants.items) == 2


# --------------------------------------------------------------------------- the handler shape
def _event(route: str, *, query: str = "", cookies: list[str] | None = None, body: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {
        "routeKey": route,
        "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "body": body,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    return event


def test_handler_routes_and_sets_cookies(facade: Facade) -> None:
    from urllib.parse import urlencode

    handle = make_handler(facade.authorization)
    result = handle(_event("GET /authorize", query=urlencode(authorize_params())), FakeContext())
    assert result["statusCode"] == 302 and result["cookies"][0].startswith("__Host-mcpkit_txn=")
    cookie = result["cookies"][0].split(";")[0]
    state = query_of(result["headers"]["Location"])["state"]
    page = handle(_event("GET /oauth/callback", query=f"code=c&state={state}", cookies=[cookie]), FakeContext())
    assert page["statusCode"] == 200
    csrf = page["body"].split('name=csrf value="')[1].split('"')[0]
    done = handle(_event("POST /consent", cookies=[cookie], body=f"csrf={csrf}&decision=approve"), FakeContext())
    assert done["statusCode"] == 302 and "code=" in done["headers"]["Location"]


def test_handler_rejects_repeated_query_parameters(facade: Facade) -> None:
    from urllib.parse import urlencode

    query = urlencode(authorize_params()) + "&scope=notes:read"
    result = make_handler(facade.authorization)(_event("GET /authorize", query=query), FakeContext())
    assert result["statusCode"] == 400 and "Location" not in result["headers"]


def test_handler_answers_503_with_retry_after_on_outage(facade: Facade) -> None:
    from urllib.parse import urlencode

    facade.resolver.fail = True
    result = make_handler(facade.authorization)(
        _event("GET /authorize", query=urlencode(authorize_params())), FakeContext()
    )
    assert result["statusCode"] == 503 and result["headers"]["Retry-After"]


def test_handler_unknown_route_is_404(facade: Facade) -> None:
    assert make_handler(facade.authorization)(_event("GET /nope"), FakeContext())["statusCode"] == 404


# --------------------------------------------------------------------------- hostile input: a page, never a 500
def _cookie_and_state(facade: Facade) -> tuple[str, str]:
    from urllib.parse import urlencode

    result = make_handler(facade.authorization)(
        _event("GET /authorize", query=urlencode(authorize_params())), FakeContext()
    )
    return result["cookies"][0].split(";")[0], query_of(result["headers"]["Location"])["state"]


@pytest.mark.parametrize(
    ("route", "query", "cookie", "body", "b64"),
    [
        # state: non-ASCII (hmac.compare_digest raised TypeError on non-ASCII str), lone surrogate
        ("GET /oauth/callback", "code=c&state=%C3%A9", "{cookie}", "", False),
        ("GET /oauth/callback", "code=c&state=\u00e9", "{cookie}", "", False),
        ("GET /oauth/callback", "code=c&state=\ud800", "{cookie}", "", False),
        ("GET /oauth/callback", "code=\udfff&state={state}", "{cookie}", "", False),
        # the cookie: non-ASCII MAC or id, lone surrogates
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn={state}.\u00e9\u00e9", "", False),
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn=\u00e9.abc", "", False),
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn=\ud800.\udfff", "", False),
        ("POST /consent", "", "__Host-mcpkit_txn={state}.\u00e9", "csrf=x&decision=approve", False),
        # the consent form: lone surrogate, non-ASCII, non-UTF-8 bytes, invalid base64
        ("POST /consent", "", "{cookie}", "csrf=\ud800&decision=approve", False),
        ("POST /consent", "", "{cookie}", "csrf=%C3%A9&decision=approve", False),
        ("POST /consent", "", "{cookie}", "Y3NyZj3/", True),
        ("POST /consent", "", "{cookie}", "!!not base64", True),
        # /authorize: lone surrogates never reach a redirect (they could not be URL-encoded)
        ("GET /authorize", "client_id=\ud800&redirect_uri=x", "", "", False),
        ("GET /authorize", "{authorize}&state=\ud800", "", "", False),
        ("GET /authorize", "{authorize}&code_challenge=\u00e9", "", "", False),
    ],
)
def test_hostile_input_gets_an_error_page(
    facade: Facade, route: str, query: str, cookie: str, body: str, b64: bool
) -> None:
    from urllib.parse import urlencode

    cookie_value, state = _cookie_and_state(facade)
    authorize = urlencode(authorize_params(state=None, code_challenge=None))
    if "code_challenge" not in query:
        authorize = urlencode(authorize_params(state=None))
    fill = {"cookie": cookie_value, "state": state, "authorize": authorize}
    event = _event(
        route,
        query=query.format(**fill),
        cookies=[cookie.format(**fill)] if cookie else None,
        body=body,
    )
    event["isBase64Encoded"] = b64
    result = make_handler(facade.authorization)(event, FakeContext())
    if route == "GET /authorize" and "code_challenge" in query:
        # A verified redirect URI: the error goes back to the client (RFC 6749 section 4.1.2.1).
        assert result["statusCode"] == 302
        assert query_of(result["headers"]["Location"])["error"] == "invalid_request"
        return
    assert result["statusCode"] == 400, result["body"]
    assert result["headers"]["Content-Type"].startswith("text/html") and "Location" not in result["headers"]
    assert not facade.codes.items


# --------------------------------------------------------------------------- the agent's name on the grant
def test_approval_records_the_clients_name_on_the_grant() -> None:
    facade = Facade(resolver=FakeResolver(public_client(client_name="Claude Desktop")))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == "Claude Desktop"
    # The transaction carries it from /authorize, for the consent decision and its events.
    (txn,) = facade.txns.items.values()
    assert txn.client_name == "Claude Desktop"


def test_a_remembered_consent_records_the_clients_name_too(facade: Facade) -> None:
    _remember(facade, "conf-agent", CONF_REDIRECT)
    approve(facade, **CONF)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == "Confidential agent"


def test_a_client_without_a_name_records_none() -> None:
    facade = Facade(resolver=FakeResolver(public_client(client_name=None)))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name == ""


def test_the_recorded_name_is_bounded_and_has_no_control_or_bidi_characters() -> None:
    # CIMD documents cached, or records written, before the registration rules: cleaned again.
    hostile = "Ev\u202eil\u2066 \x07Agent\u200b\n" + "x" * 1000
    facade = Facade(resolver=FakeResolver(public_client(client_name=hostile)))
    approve(facade)
    (grant,) = facade.grants.items.values()
    assert grant.client_name.startswith("Evil Agent")
    assert len(grant.client_name) == MAX_NAME_LENGTH
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in grant.client_name)
