"""GET /authorize: validation order, error page vs redirect, the transaction, the upstream redirect."""

from __future__ import annotations

import pytest

from functions.core.cognito.gateway_secret import StaticSecret, gateway_pkce_verifier
from functions.core.oauth import scopes as catalogue
from functions.core.platform.crypto import s256
from functions.core.platform.errors import DependencyError
from tests.facade_fakes import (
    CHALLENGE,
    CONF_REDIRECT,
    GATEWAY_SECRET,
    PUBLIC_REDIRECT,
    Facade,
    FakeResolver,
    authorize_params,
    confidential_client,
    facade_settings,
    public_client,
    query_of,
    start,
)
from tests.helpers import BASE_URL, GATEWAY_CLIENT, MCP_URL


def _no_redirect(answer: object, facade: Facade) -> None:
    assert answer.status == 400  # type: ignore[attr-defined]
    assert "Location" not in answer.headers  # type: ignore[attr-defined]
    assert answer.headers["X-Frame-Options"] == "DENY"  # type: ignore[attr-defined]
    assert not facade.txns.items  # nothing stored for a rejected request


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},  # unknown client
        {"client_id": None},
        {"client_id": "x" * 3000},
        {"redirect_uri": "https://evil.example/cb"},  # not registered
        {"redirect_uri": "http://127.0.0.1:33418/other"},  # loopback: any port, never any path
        {"redirect_uri": None},
    ],
)
def test_unknown_client_or_redirect_renders_a_page_and_never_redirects(facade: Facade, overrides: dict) -> None:
    answer = facade.authorization().authorize(authorize_params(**overrides))
    _no_redirect(answer, facade)


def test_repeated_parameter_is_a_page(facade: Facade) -> None:
    _no_redirect(facade.authorization().authorize(None), facade)


def test_loopback_redirect_matches_on_any_port(facade: Facade) -> None:
    answer = facade.authorization().authorize(authorize_params(redirect_uri="http://127.0.0.1:50123/callback"))
    assert answer.status == 302
    (txn,) = facade.txns.items.values()
    assert txn.redirect_uri == "http://127.0.0.1:50123/callback"  # the one used, for /token's equality check


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # RFC 7636: absent means plain
        ({"code_challenge": "too-short"}, "invalid_request"),
        # RFC 7636 section 4.2: exactly 43 base64url characters; "$" would also match before a final newline.
        ({"code_challenge": CHALLENGE + "\n"}, "invalid_request"),
        ({"resource": "https://other.example.com/mcp"}, "invalid_target"),
        ({"resource": BASE_URL}, "invalid_target"),
        ({"resource": MCP_URL + "//"}, "invalid_target"),
        ({"resource": MCP_URL + "x"}, "invalid_target"),
        ({"resource": MCP_URL + "#frag"}, "invalid_target"),
        ({"resource": "http://mcp.example.com/mcp"}, "invalid_target"),
        ({"resource": "https://mcp.example.com:8443/mcp"}, "invalid_target"),
        ({"state": "s" * 1025}, "invalid_request"),
    ],
)
def test_other_errors_redirect_with_error_state_and_iss(facade: Facade, overrides: dict, error: str) -> None:
    answer = facade.authorization().authorize(authorize_params(**overrides))
    assert answer.status == 302
    assert answer.headers["Location"].startswith(PUBLIC_REDIRECT + "?")
    query = query_of(answer.headers["Location"])
    assert query["error"] == error
    assert query["iss"] == BASE_URL  # RFC 9207
    if "state" not in overrides:
        assert query["state"] == "client-state"
    assert not facade.txns.items


class UnreadableSecret(StaticSecret):
    """The gateway client's secret while DescribeUserPoolClient fails."""

    def get(self) -> str:
        raise DependencyError("DescribeUserPoolClient failed")


def test_a_503_for_the_gateway_secret_stores_no_pending_request(
    facade: Facade, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every 503 is safe to retry and leaves nothing behind: the upstream redirect, which needs
    # the gateway secret (cookie key, PKCE verifier), is built before the request is stored.
    service = facade.authorization()
    monkeypatch.setattr(service, "_secret", UnreadableSecret(GATEWAY_SECRET))
    with pytest.raises(DependencyError):
        service.authorize(authorize_params())
    assert not facade.txns.items
    monkeypatch.setattr(service, "_secret", StaticSecret(GATEWAY_SECRET))
    assert service.authorize(authorize_params()).status == 302 and len(facade.txns.items) == 1


def test_client_not_registered_for_code_grant_is_unauthorized_client() -> None:
    facade = Facade(resolver=FakeResolver(public_client(grant_types=("refresh_token",))))
    query = query_of(facade.authorization().authorize(authorize_params()).headers["Location"])
    assert query["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("notes:read offline_access openid", ("notes:read",)),
        ("offline_access openid profile email", catalogue.default_scopes()),
        ("notes:write admin notes:read", ("notes:read", "notes:write")),
        ("", catalogue.default_scopes()),
    ],
)
def test_scopes_outside_the_catalogue_are_ignored_not_refused(facade: Facade, scope: str, granted: tuple) -> None:
    # RFC 6749 section 3.3: the server may ignore part of the requested scope.
    started = start(facade, scope=scope)
    assert facade.txns.items[started.txn_id].scopes == granted


def test_registered_scope_is_a_default_not_a_cap() -> None:
    facade = Facade(resolver=FakeResolver(public_client(scope="notes:read")))
    started = start(facade, scope="notes:read notes:write")  # step-up beyond the registration
    assert facade.txns.items[started.txn_id].scopes == ("notes:read", "notes:write")
    started = start(facade, scope=None)  # no scope: the client's registered scope
    assert facade.txns.items[started.txn_id].scopes == ("notes:read",)


@pytest.mark.parametrize(
    "resource",
    [
        MCP_URL + "/",
        "HTTPS://MCP.EXAMPLE.COM/mcp",
        "https://mcp.example.com:443/mcp",
        "https://mcp.example.com/%6Dcp",
        "https://mcp.example.com/./mcp",
        "https://mcp.example.com/x/../mcp/",
    ],
)
def test_resource_is_compared_after_rfc3986_normalisation(facade: Facade, resource: str) -> None:
    started = start(facade, resource=resource)
    assert facade.txns.items[started.txn_id].resource == MCP_URL


def test_error_redirect_keeps_the_registered_query() -> None:
    redirect = CONF_REDIRECT + "?tenant=7"
    facade = Facade(resolver=FakeResolver(confidential_client(redirect_uris=(redirect,))))
    answer = facade.authorization().authorize(
        authorize_params(client_id="conf-agent", redirect_uri=redirect, response_type="token")
    )
    assert answer.headers["Location"].startswith(redirect + "&")
    assert query_of(answer.headers["Location"])["tenant"] == "7"


def test_no_scope_means_the_catalogue_defaults(facade: Facade) -> None:
    started = start(facade, scope=None)
    assert facade.txns.items[started.txn_id].scopes == catalogue.default_scopes()


def test_absent_resource_defaults_to_the_mcp_url(facade: Facade) -> None:
    started = start(facade, resource=None)
    assert facade.txns.items[started.txn_id].resource == MCP_URL


def test_transaction_is_stored_pending_for_at_most_ten_minutes(facade: Facade) -> None:
    started = start(facade)
    txn = facade.txns.items[started.txn_id]
    assert txn.status == "pending"
    assert txn.expires_at - txn.created_at <= 600
    assert (txn.client_id, txn.redirect_uri, txn.state) == ("public-agent", PUBLIC_REDIRECT, "client-state")
    assert txn.scopes == ("notes:read", "notes:write")
    assert len(started.txn_id) >= 43  # 256 bits
    # The kit's upstream verifier is derived, never stored.
    verifier = gateway_pkce_verifier(StaticSecret(GATEWAY_SECRET), started.txn_id)
    assert verifier not in repr(txn)


def test_redirects_to_cognito_with_the_gateway_client_and_kit_pkce(facade: Facade) -> None:
    answer = facade.authorization().authorize(authorize_params())
    location = answer.headers["Location"]
    assert location.startswith("https://auth.example.com/oauth2/authorize?")
    up = query_of(location)
    assert up["client_id"] == GATEWAY_CLIENT
    assert up["redirect_uri"] == BASE_URL + "/oauth/callback"
    assert up["response_type"] == "code"
    assert up["scope"].split() == ["openid", "email", f"{MCP_URL}/notes:read", f"{MCP_URL}/notes:write"]
    assert up["code_challenge_method"] == "S256"
    assert up["code_challenge"] == s256(gateway_pkce_verifier(StaticSecret(GATEWAY_SECRET), up["state"]))
    assert up["code_challenge"] != authorize_params()["code_challenge"]  # the kit's own pair
    assert up["resource"] == MCP_URL
    assert up["state"] in facade.txns.items


def test_no_resource_upstream_when_binding_is_off() -> None:
    facade = Facade(settings=facade_settings(resource_binding=False))
    assert "resource" not in start(facade).upstream


def test_custom_resource_server_id_names_cognito_scopes() -> None:
    facade = Facade(settings=facade_settings(resource_server_override="mcp-kit"))
    assert start(facade).upstream["scope"].split()[2:] == ["mcp-kit/notes:read", "mcp-kit/notes:write"]


def test_cookie_is_host_prefixed_secure_httponly_lax(facade: Facade) -> None:
    answer = facade.authorization().authorize(authorize_params())
    (cookie,) = answer.cookies
    name_value, *attrs = [part.strip() for part in cookie.split(";")]
    assert name_value.startswith("__Host-mcpkit_txn=")
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"} <= set(attrs)
    assert not any(a.lower().startswith("domain") for a in attrs)
    txn_id, _, tag = name_value.partition("=")[2].rpartition(".")
    assert txn_id == query_of(answer.headers["Location"])["state"] and tag


def test_cookie_on_plain_http_localhost_drops_prefix_and_secure() -> None:
    facade = Facade(settings=facade_settings(base_url="http://localhost:8000"))
    (cookie,) = facade.authorization().authorize(authorize_params()).cookies
    assert cookie.startswith("mcpkit_txn=")
    assert "Secure" not in cookie and "HttpOnly" in cookie


def test_default_identity_provider_is_sent_upstream() -> None:
    """Cognito's identity_provider: people of a SAML/OIDC-only organisation skip the chooser."""
    facade = Facade(settings=facade_settings(default_identity_provider="CorpSAML"))
    assert start(facade).upstream["identity_provider"] == "CorpSAML"
    assert "identity_provider" not in start(Facade()).upstream
