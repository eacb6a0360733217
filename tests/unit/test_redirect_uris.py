"""Redirect URIs: the fixed rules, the operator's patterns, and the one comparison.

RFC 6749 section 3.1.2, OAuth 2.1 section 2.3.1, RFC 8252 sections 7.1 and 7.3, RFC 9700
section 4.1.3, RFC 3986 section 6.2.3.
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients.metadata import MAX_REDIRECT_URIS, validate_client_metadata
from functions.core.clients.redirect_patterns import parse_redirect_pattern, redirect_uri_allowed
from functions.core.clients.redirect_uris import check_redirect_uri, redirect_uri_matches, redirect_uri_registered
from functions.core.oauth.uris import MAX_URI_LENGTH
from functions.core.platform.errors import OAuthError
from tests.unit.metadata_docs import meta, rejected


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?x=1",
        "http://localhost:8080/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:9000/callback",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback",
    ],
)
def test_allowed_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://app.example.com/cb", "loopback"),
        ("http://10.0.0.1/cb", "loopback"),
        ("http://localhost.example.com/cb", "loopback"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("https://app.example.com/cb#", "fragment"),
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("https://user@app.example.com/cb", "userinfo"),
        ("https://user:pw@app.example.com/cb", "userinfo"),
        ("http://evil@127.0.0.1/cb", "userinfo"),
        ("javascript:alert(1)", "javascript"),
        ("data:text/html,hi", "data"),
        ("file:///etc/passwd", "file"),
        ("vbscript:msgbox", "vbscript"),
        ("myapp:/callback", "reverse-domain"),
        ("my_app.example:/callback", "absolute"),
        ("HTTPS://app.example.com/cb", "lower case"),
        ("/relative/callback", "absolute"),
        ("https:///nohost", "host"),
        ("https://app.example.com/c b", "whitespace"),
        ("https://app.example.com/\u00e9", "non-ASCII"),
        ("https://app.example.com:99999/cb", "absolute"),
        ("", "non-empty"),
    ],
)
def test_refused_redirect_uris(uri: str, why: str) -> None:
    with pytest.raises(OAuthError) as info:
        check_redirect_uri(uri)
    assert info.value.error == "invalid_redirect_uri"
    assert why in info.value.description


def test_redirect_uri_length_is_bounded() -> None:
    ok = "https://app.example.com/" + "a" * (MAX_URI_LENGTH - 24)
    assert len(ok) == MAX_URI_LENGTH
    assert check_redirect_uri(ok) == ok
    with pytest.raises(OAuthError, match="longer"):
        check_redirect_uri(ok + "a")


def test_redirect_uri_count_is_bounded() -> None:
    uris = [f"https://app.example.com/cb{i}" for i in range(MAX_REDIRECT_URIS)]
    assert len(validate_client_metadata(meta(redirect_uris=uris)).redirect_uris) == MAX_REDIRECT_URIS
    err = rejected(meta(redirect_uris=[*uris, "https://app.example.com/extra"]))
    assert err.error == "invalid_redirect_uri"


@pytest.mark.parametrize("value", [None, [], "https://app.example.com/cb", [42]])
def test_redirect_uris_shape(value: Any) -> None:
    doc = meta()
    if value is None:
        del doc["redirect_uris"]
    else:
        doc["redirect_uris"] = value
    assert rejected(doc).error == "invalid_redirect_uri"


def test_operator_redirect_patterns_restrict_uris() -> None:
    patterns = ("http://127.0.0.1:*/callback", "https://*.corp.example/*")
    validate_client_metadata(meta(redirect_uris=["http://127.0.0.1:1234/callback"]), redirect_patterns=patterns)
    validate_client_metadata(meta(redirect_uris=["https://a.corp.example/cb"]), redirect_patterns=patterns)
    err = rejected(meta(redirect_uris=["https://evil.example/cb"]), redirect_patterns=patterns)
    assert err.error == "invalid_redirect_uri"
    assert "policy" in err.description


POLICY = (
    "https://*.corp.example/*",
    "http://127.0.0.1:*/callback",
    "http://[::1]:*/cb",
    "com.example.app:/*",
    "https://app.example:8443/cb?tenant=a",
)


def test_glob_over_the_whole_uri_is_no_longer_a_bypass() -> None:
    # With fnmatch on the whole string, '*' crossed '/' and this was accepted.
    err = rejected(meta(redirect_uris=["https://evil.com/.corp.example/x"]), redirect_patterns=POLICY)
    assert err.error == "invalid_redirect_uri"
    assert "policy" in err.description


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.com/.corp.example/x",  # the suffix in the path
        "https://evil.com/a.corp.example/x",
        "https://evil.com?.corp.example/x",  # ... in the query
        "https://evil.com/x?h=a.corp.example",
        "https://a.corp.example@evil.com/x",  # ... in userinfo
        "https://evil.com@a.corp.example/x",  # userinfo is refused outright
        "https://corp.example/x",  # '*.' needs at least one label
        "https://.corp.example/x",
        "https://a..corp.example/x",
        "https://evilcorp.example/x",  # a suffix that is not on a label boundary
        "https://a.corp.example.evil.com/x",
        "https://a.corp.example./x",  # trailing dot: not the same string suffix
        "https://evil.com%2f.corp.example/x",  # an encoded '/' is not a label character
        "https://evil.com\\.corp.example/x",
        "https://a.corp.example:8443/x",  # the pattern has no port: only none matches
        "http://a.corp.example/x",  # scheme
        "https://a.corp.example/x?next=https://evil.example",  # a query the pattern lacks
        "http://localhost:1234/callback",  # host is exact
        "http://127.0.0.1:1234/callback/x",  # path is exact here
        "http://127.0.0.1:1234/callbackx",
        "http://127.0.0.1:1234/callback?x=1",
        "com.example.app://evil.example/cb",  # authority where the pattern has none
        "com.example.appx:/cb",
        "https://app.example:8443/cb?tenant=b",  # query is exact
        "https://app.example:8443/cb?tenant=a&x=1",
        "https://app.example/cb?tenant=a",  # port is exact
        "https://app.example:8444/cb?tenant=a",
        "not a uri",
    ],
)
def test_patterns_refuse_lookalikes(uri: str) -> None:
    assert not redirect_uri_allowed(uri, POLICY)
    # Through the validator too (some are already refused by the fixed rules, e.g. userinfo).
    assert rejected(meta(redirect_uris=[uri]), redirect_patterns=POLICY).error == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "uri",
    [
        "https://a.corp.example/cb",
        "https://a.b.corp.example/deep/path/cb",  # several labels, '*' in the path spans '/'
        "https://A.Corp.EXAMPLE/cb",  # host is case-insensitive
        "https://a-1.corp.example/",
        "http://127.0.0.1:1234/callback",  # port '*'
        "http://127.0.0.1/callback",
        "http://[::1]:50123/cb",
        "com.example.app:/oauth/cb",  # private-use scheme: scheme + path
        "com.example.app:/",
        "https://app.example:8443/cb?tenant=a",
        "https://app.example:8443/cb",  # no query is always fine
        "https://a.corp.example/x?",  # an empty query is no query
    ],
)
def test_patterns_accept_legitimate_uris(uri: str) -> None:
    assert redirect_uri_allowed(uri, POLICY)
    if uri.startswith("https://A."):
        return  # check_redirect_uri also passes it; validate_client_metadata keeps the case
    validate_client_metadata(meta(redirect_uris=[uri]), redirect_patterns=POLICY)


def test_pattern_scheme_and_host_are_case_insensitive() -> None:
    assert redirect_uri_allowed("https://a.corp.example/cb", ["HTTPS://*.Corp.Example/*"])
    assert redirect_uri_allowed("com.example.app:/cb", ["Com.Example.App:/*"])


def test_pattern_path_is_case_sensitive_fnmatch() -> None:
    assert redirect_uri_allowed("https://a.example/cb/1", ["https://a.example/cb/[0-9]"])
    assert not redirect_uri_allowed("https://a.example/CB/1", ["https://a.example/cb/*"])
    assert not redirect_uri_allowed("https://a.example/", ["https://a.example"])


@pytest.mark.parametrize(
    "pattern",
    [
        "https://a*.corp.example/*",  # wildcard inside a label
        "https://*/*",  # any host
        "https://*.*.example/*",
        "https://corp.*/*",
        "https://*./*",
        "*://a.example/*",
        "https://a.example:8x/*",
        "https://a.example:/*",
        "https://a.example:70000/*",
        "https://a.example/*?*",  # queries are exact
        "https://u@a.example/*",
        "https://a.example/*#f",
        "https://[::1/*",
        "https://:443/*",
    ],
)
def test_malformed_patterns_match_nothing(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"pattern|wildcard"):
        parse_redirect_pattern(pattern)
    assert not redirect_uri_allowed("https://a.example/cb", [pattern])
    assert not redirect_uri_allowed("https://a.corp.example/cb", [pattern])
    # Fails closed: a bad pattern does not disable the policy, the others still apply.
    assert redirect_uri_allowed("https://a.example/cb", [pattern, "https://a.example/*"])


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("https://app.example.com/cb", "https://app.example.com/cb", True),
        ("https://app.example.com/cb", "https://app.example.com/cb/", False),
        ("https://app.example.com/cb", "https://app.example.com:443/cb", False),
        ("https://app.example.com:8443/cb", "https://app.example.com:9443/cb", False),
        ("https://app.example.com/cb", "https://APP.example.com/cb", False),
        ("https://app.example.com/cb?a=1", "https://app.example.com/cb?a=2", False),
        # RFC 8252 section 7.3: loopback http matches on any port.
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback", True),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:51234/callback", True),
        ("http://[::1]:3000/callback", "http://[::1]:4000/callback", True),
        ("http://localhost:3000/callback", "http://localhost:4000/callback", True),
        ("http://127.0.0.1:3000/callback?x=1", "http://127.0.0.1:4000/callback?x=1", True),
        # ... but nothing else may differ.
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:4000/other", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:4000/callback?x=1", False),
        ("http://127.0.0.1:3000/callback", "http://localhost:3000/callback", False),
        ("http://127.0.0.1:3000/callback", "https://127.0.0.1:3000/callback", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:4000/callback#x", False),
        ("http://127.0.0.1:3000/callback", "http://evil@127.0.0.1:4000/callback", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:bad/callback", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.2:3000/callback", False),
        ("com.example.app:/cb", "com.example.app:/cb", True),
        ("com.example.app:/cb", "com.example.app:/cb2", False),
    ],
)
def test_redirect_uri_matches(registered: str, presented: str, expected: bool) -> None:
    assert redirect_uri_matches(registered, presented) is expected


# ----- redirect URIs: RFC 3986 section 6.2.3 and operator widening ----------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("http://127.0.0.1:33418", "http://127.0.0.1:33418/"),
        ("http://127.0.0.1:33418/", "http://127.0.0.1:33418/"),
        ("https://app.example.com", "https://app.example.com/"),
        ("https://app.example.com?x=1", "https://app.example.com/?x=1"),
        ("https://app.example.com/cb", "https://app.example.com/cb"),
        ("com.example.app:/cb", "com.example.app:/cb"),
    ],
)
def test_an_empty_http_path_is_registered_as_slash(given: str, stored: str) -> None:
    assert validate_client_metadata(meta(redirect_uris=[given])).redirect_uris == (stored,)


def test_loopback_with_and_without_slash_is_one_uri_and_one_dedupe_key() -> None:
    a = validate_client_metadata(meta(redirect_uris=["http://127.0.0.1:33418"]))
    b = validate_client_metadata(meta(redirect_uris=["http://127.0.0.1:33418/"]))
    both = validate_client_metadata(meta(redirect_uris=["http://127.0.0.1:33418", "http://127.0.0.1:33418/"]))
    assert a.dedupe_key() == b.dedupe_key() == both.dedupe_key()
    assert both.redirect_uris == ("http://127.0.0.1:33418/",)


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("http://127.0.0.1:33418", "http://127.0.0.1:33418/", True),
        ("http://127.0.0.1:33418/", "http://127.0.0.1:33418", True),
        ("http://127.0.0.1:33418/", "http://127.0.0.1:5000", True),  # any loopback port (RFC 8252 7.3)
        ("http://localhost", "http://localhost:8080/", True),
        ("https://app.example.com", "https://app.example.com/", True),
        ("https://app.example.com/", "https://app.example.com", True),
        # only the empty path is normalised
        ("https://app.example.com/", "https://APP.example.com/", False),
        ("https://app.example.com/", "https://app.example.com:443/", False),
        ("https://app.example.com/cb", "https://app.example.com/cb/", False),
        ("https://app.example.com", "https://app.example.com/#", False),
        ("https://app.example.com", "https://app.example.com/x", False),
        ("http://127.0.0.1:33418", "http://127.0.0.1:33418/x", False),
        ("http://127.0.0.1:33418", "http://127.0.0.1:33418?x", False),
        ("com.example.app:", "com.example.app:/", False),
    ],
)
def test_redirect_uri_matches_after_empty_path_normalisation(registered: str, presented: str, expected: bool) -> None:
    assert redirect_uri_matches(registered, presented) is expected


CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback"


def test_non_reverse_domain_scheme_is_refused_by_default() -> None:
    assert "reverse-domain" in rejected(meta(redirect_uris=[CURSOR])).description


def test_an_operator_pattern_widens_to_a_custom_scheme_without_narrowing() -> None:
    m = validate_client_metadata(meta(redirect_uris=[CURSOR]), redirect_patterns=("cursor://anysphere.cursor-mcp/*",))
    assert m.redirect_uris == (CURSOR,)
    # A list of only custom-scheme patterns adds them; every other URI keeps the fixed rules.
    for uri in ("https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/", "com.example.app:/cb"):
        validate_client_metadata(meta(redirect_uris=[uri]), redirect_patterns=("cursor://anysphere.cursor-mcp/*",))
    # Only what the pattern names: another host or scheme stays refused.
    for uri in ("cursor://evil.example/oauth/callback", "vscode://anysphere.cursor-mcp/oauth/callback"):
        rejected(meta(redirect_uris=[uri]), redirect_patterns=("cursor://anysphere.cursor-mcp/*",))


def test_widening_combines_with_narrowing_patterns() -> None:
    policy = ("https://*.corp.example/*", "cursor://anysphere.cursor-mcp/*")
    validate_client_metadata(meta(redirect_uris=[CURSOR]), redirect_patterns=policy)
    validate_client_metadata(meta(redirect_uris=["https://a.corp.example/cb"]), redirect_patterns=policy)
    rejected(meta(redirect_uris=["https://claude.ai/cb"]), redirect_patterns=policy)
    rejected(meta(redirect_uris=["http://127.0.0.1:1/cb"]), redirect_patterns=policy)


@pytest.mark.parametrize(
    ("uri", "pattern"),
    [
        ("cursor://evil@anysphere.cursor-mcp/cb", "cursor://anysphere.cursor-mcp/*"),
        ("cursor://anysphere.cursor-mcp/cb#x", "cursor://anysphere.cursor-mcp/*"),
        ("http://evil.example/cb", "cursor://anysphere.cursor-mcp/*"),
        ("javascript://anysphere.cursor-mcp/%0aalert(1)", "cursor://anysphere.cursor-mcp/*"),
        ("CURSOR://anysphere.cursor-mcp/cb", "cursor://anysphere.cursor-mcp/*"),
    ],
)
def test_patterns_never_lift_the_fixed_rules(uri: str, pattern: str) -> None:
    assert rejected(meta(redirect_uris=[uri]), redirect_patterns=(pattern,)).error == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "pattern",
    ["javascript:*", "data:*", "file:///*", "JavaScript://x/*", "http://app.example.com/*", "http://*.corp.example/*"],
)
def test_patterns_that_could_only_admit_forbidden_uris_are_malformed(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        parse_redirect_pattern(pattern)
    # and such a pattern, had it slipped through, restricts rather than opens
    assert rejected(meta(redirect_uris=["javascript:alert(1)"]), redirect_patterns=(pattern,))


def test_a_presented_uri_is_registered_when_it_matches_one_registered_uri() -> None:
    registered = ("https://agent.example.org/cb", "http://127.0.0.1:33418/callback")
    assert redirect_uri_registered("http://127.0.0.1:9999/callback", registered)  # any loopback port
    assert redirect_uri_registered("https://agent.example.org/cb", registered)
    assert not redirect_uri_registered("http://127.0.0.1:9999/other", registered)
    assert not redirect_uri_registered("https://agent.example.org/cb2", registered)
    assert not redirect_uri_registered("https://agent.example.org/cb", ())
