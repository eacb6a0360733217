"""Documents served by the loopback server: what is refused (status, media type, the document's
own rules, the operator's redirect patterns) and what is narrowed and accepted."""

from __future__ import annotations

import pytest

from functions.core.clients.cimd_fetch import CimdError
from functions.core.clients.resolver import make_client_resolver
from tests.integration.cimd.servers import Servers, facade_settings, loopback_resolver


def test_operator_redirect_patterns_apply_to_documents(servers: Servers) -> None:
    # The document's redirect URI is http://127.0.0.1:33418/callback.
    url = f"https://localhost:{servers.https.port}/client.json"
    strict = facade_settings(servers, redirect_patterns="https://*.corp.example/*")
    assert make_client_resolver(strict).resolve(url) is None
    with pytest.raises(CimdError, match="policy"):
        loopback_resolver(servers, redirect_patterns=strict.redirect_patterns).fetch(url)
    allowing = facade_settings(servers, redirect_patterns="https://*.corp.example/*,http://127.0.0.1:*/callback")
    record = make_client_resolver(allowing).resolve(url)
    assert record is not None
    assert record.redirect_uris == ("http://127.0.0.1:33418/callback",)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/redirect.json", "redirects"),
        ("/html.json", "application/json"),
        ("/mismatch.json", "does not match"),
        ("/secret.json", "secret"),
        ("/basic.json", "token_endpoint_auth_method"),
        ("/pkjwt.json", "token_endpoint_auth_method"),
        ("/badredirect.json", "loopback"),
        ("/notjson.json", "valid JSON"),
        ("/nested.json", "valid JSON"),
        ("/missing.json", "HTTP 404"),
    ],
)
def test_refused_documents(servers: Servers, path: str, why: str) -> None:
    with pytest.raises(CimdError, match=why):
        loopback_resolver(servers).fetch(f"https://localhost:{servers.https.port}{path}")


def test_a_deeply_nested_document_is_refused_not_raised(servers: Servers) -> None:
    # resolve() is what /authorize and /token call: a refusal is None (unknown client), not a 500.
    assert loopback_resolver(servers).resolve(f"https://localhost:{servers.https.port}/nested.json") is None


def test_claude_metadata_document_is_accepted_with_unsupported_grants_dropped(servers: Servers) -> None:
    url = f"https://localhost:{servers.https.port}/claude.json"
    record, _ = loopback_resolver(servers).fetch(url)
    assert record.client_id == url
    assert record.grant_types == ("authorization_code", "refresh_token")
    assert record.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert record.metadata["client_uri"] == "https://claude.ai"
    assert record.redirect_uris == ("https://claude.ai/api/mcp/auth_callback",)


def test_invisible_characters_are_stripped_from_documents(servers: Servers) -> None:
    record, _ = loopback_resolver(servers).fetch(f"https://localhost:{servers.https.port}/bidi.json")
    assert record.client_name == "Trusted Agent"
    assert record.metadata["client_name"] == "Trusted Agent"
    assert record.metadata["software_id"] == "ab"
