"""Client metadata validation (RFC 7591) and redirect URI matching (RFC 8252 section 7.3)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients.metadata import (
    MAX_REDIRECT_URIS,
    MAX_URI_LENGTH,
    check_redirect_uri,
    parse_redirect_pattern,
    redirect_uri_allowed,
    redirect_uri_matches,
    validate_client_metadata,
)
from functions.core.platform.errors import OAuthError
from tests.helpers import CLAUDE_METADATA


def meta(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1:3000/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def rejected(doc: dict[str, Any], **kw: Any) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        validate_client_metadata(doc, **kw)
    assert info.value.status == 400
    return info.value


def test_valid_public_metadata_is_accepted_and_echoed() -> None:
    m = validate_client_metadata(meta(scope="notes:read", software_id="sw", software_version="1.0"))
    assert m.is_public
    assert m.to_json() == {
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1:3000/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "notes:read",
        "application_type": "web",
        "software_id": "sw",
        "software_version": "1.0",
    }


def test_rfc7591_defaults_apply_when_fields_are_omitted() -> None:
    m = validate_client_metadata({"redirect_uris": ["https://app.example.com/cb"]})
    assert m.grant_types == ("authorization_code",)
    assert m.response_types == ("code",)
    assert m.token_endpoint_auth_method == "client_secret_basic"  # RFC 7591 section 2 default
    assert m.application_type == "web"


def test_null_members_count_as_omitted() -> None:
    m = validate_client_metadata(
        meta(grant_types=None, response_types=None, token_endpoint_auth_method=None)
        | {"grant_types": None, "application_type": None, "client_uri": None, "scope": None}
    )
    assert m.grant_types == ("authorization_code",)
    assert m.application_type == "web"
    assert "client_uri" not in m.to_json()


def test_unknown_fields_are_ignored_not_echoed() -> None:
    m = validate_client_metadata(meta(jwks_uri="https://x.example/jwks", contacts=["a@b.c"]))
    assert "jwks_uri" not in m.to_json()
    assert "contacts" not in m.to_json()


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
    ("field", "value", "fragment"),
    [
        ("grant_types", ["implicit"], "grant_types"),
        ("grant_types", ["refresh_token"], "authorization_code"),
        ("grant_types", "authorization_code", "array"),
        ("grant_types", ["authorization_code"] * 11, "entries"),
        ("response_types", ["token"], "response_types"),
        ("response_types", ["token", "id_token"], "response_types"),
        ("response_types", [], "array"),
        ("token_endpoint_auth_method", "private_key_jwt", "token_endpoint_auth_method"),
        ("token_endpoint_auth_method", "client_secret_jwt", "token_endpoint_auth_method"),
        ("token_endpoint_auth_method", 1, "token_endpoint_auth_method"),
        ("scope", "notes:read " * 100, "longer"),
        ("scope", 5, "scope"),
        ("application_type", "desktop", "application_type"),
        ("client_uri", "http://app.example.com", "https"),
        ("client_uri", "javascript:alert(1)", "https"),
        ("logo_uri", "https://user@app.example.com/logo.png", "userinfo"),
        ("logo_uri", "https://app.example.com/" + "a" * MAX_URI_LENGTH, "longer"),
        ("client_name", "x" * 201, "longer"),
        ("client_name", "bad\nname", "control"),
        ("client_name", "bad\x85name", "control"),  # C1 control (NEL)
        ("client_name", "\u202e\u200b\u2066", "visible"),  # nothing visible is left
        ("software_id", "\u2028\u200b", "visible"),
        ("client_name", 7, "string"),
        ("client_name", "   ", "string"),
        ("software_id", "s" * 201, "longer"),
        ("software_version", "v" * 101, "longer"),
    ],
)
def test_refused_metadata(field: str, value: Any, fragment: str) -> None:
    err = rejected(meta(**{field: value}))
    assert err.error == "invalid_client_metadata"
    assert fragment in err.description


@pytest.mark.parametrize("method", ["none", "client_secret_basic", "client_secret_post"])
def test_supported_auth_methods(method: str) -> None:
    assert validate_client_metadata(meta(token_endpoint_auth_method=method)).token_endpoint_auth_method == method


def test_allowed_auth_methods_can_be_narrowed() -> None:
    err = rejected(meta(token_endpoint_auth_method="client_secret_post"), allowed_auth_methods=("none",))
    assert "none" in err.description
    m = validate_client_metadata({"redirect_uris": ["https://a.example/cb"]}, default_auth_method="none")
    assert m.token_endpoint_auth_method == "none"


def test_non_object_is_refused() -> None:
    assert rejected([], allowed_auth_methods=()).error == "invalid_client_metadata"  # type: ignore[arg-type]


def test_canonical_form_ignores_order_and_duplicates() -> None:
    a = validate_client_metadata(
        meta(redirect_uris=["https://a.example/1", "https://a.example/2"], scope="notes:write notes:read")
    )
    b = validate_client_metadata(
        meta(
            redirect_uris=["https://a.example/2", "https://a.example/1", "https://a.example/2"],
            scope="notes:read notes:write",
            grant_types=["refresh_token", "authorization_code"],
        )
    )
    assert a.dedupe_key() == b.dedupe_key()
    c = validate_client_metadata(meta(redirect_uris=["https://a.example/1"]))
    assert c.dedupe_key() != a.dedupe_key()
    # Defaults are part of the canonical form: omitted == explicit default.
    d = validate_client_metadata({"redirect_uris": ["https://a.example/1"], "token_endpoint_auth_method": "none"})
    e = validate_client_metadata(
        {
            "redirect_uris": ["https://a.example/1"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "application_type": "web",
        }
    )
    assert d.dedupe_key() == e.dedupe_key()


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


@pytest.mark.parametrize(
    ("requested", "kept"),
    [
        ("notes:read admin", "notes:read"),
        ("openid offline_access notes:write notes:read", "notes:write notes:read"),
        ("openid profile", None),
    ],
)
def test_scopes_outside_the_catalogue_are_dropped_not_fatal(requested: str, kept: str | None) -> None:
    # RFC 7591 section 3.2.1: the server may replace requested values; agents commonly ask
    # for OIDC scopes, which must not make registration fail.
    meta = validate_client_metadata({"redirect_uris": ["https://app.example.com/cb"], "scope": requested})
    assert meta.scope == kept


def test_lone_surrogates_in_text_are_refused() -> None:
    # JSON "\ud800" decodes to a lone surrogate: it cannot be stored as UTF-8 or rendered.
    with pytest.raises(OAuthError, match="client_name"):
        validate_client_metadata({"redirect_uris": ["https://app.example.com/cb"], "client_name": "agent\ud800"})


# ----- narrow, don't refuse (RFC 7591 section 3.2.1) -----------------------------------


def test_claude_metadata_registers_with_unsupported_grant_types_dropped() -> None:
    m = validate_client_metadata(CLAUDE_METADATA)
    assert m.grant_types == ("authorization_code", "refresh_token")
    assert m.to_json()["grant_types"] == ["authorization_code", "refresh_token"]
    assert m.response_types == ("code",)


@pytest.mark.parametrize(
    ("grant_types", "kept"),
    [
        (["authorization_code", "client_credentials"], ("authorization_code",)),
        (["implicit", "authorization_code", "password"], ("authorization_code",)),
        (["urn:ietf:params:oauth:grant-type:device_code", "refresh_token", "authorization_code"], None),
    ],
)
def test_any_unsupported_grant_type_is_dropped(grant_types: list[str], kept: tuple[str, ...] | None) -> None:
    m = validate_client_metadata(meta(grant_types=grant_types))
    assert m.grant_types == (kept or ("refresh_token", "authorization_code"))


@pytest.mark.parametrize(
    "grant_types",
    [["refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"], ["client_credentials"], ["implicit"]],
)
def test_registration_without_authorization_code_is_refused(grant_types: list[str]) -> None:
    err = rejected(meta(grant_types=grant_types))
    assert err.error == "invalid_client_metadata"
    assert "authorization_code" in err.description


def test_unsupported_response_types_are_dropped_and_none_left_is_refused() -> None:
    assert validate_client_metadata(meta(response_types=["code", "id_token", "token"])).response_types == ("code",)
    assert "code" in rejected(meta(response_types=["id_token token"])).description


def test_narrowed_metadata_shares_the_dedupe_key_of_what_was_kept() -> None:
    plain = validate_client_metadata({**CLAUDE_METADATA, "grant_types": ["authorization_code", "refresh_token"]})
    assert validate_client_metadata(CLAUDE_METADATA).dedupe_key() == plain.dedupe_key()


@pytest.mark.parametrize("method", ["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"])
def test_unknown_auth_method_is_refused_not_replaced(method: str) -> None:
    err = rejected(meta(token_endpoint_auth_method=method))
    assert "token_endpoint_auth_method" in err.description


# ----- displayed text: no invisible characters (UTR 36, UTS 39) ------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Claude\u202e\u2066 dlrow olleh", "Claude dlrow olleh"),  # RLO + LRI: bidi spoofing
        ("Good\u200bAgent\u200d", "GoodAgent"),  # zero-width space / joiner
        ("a\u2028b\u2029c", "abc"),  # line / paragraph separators
        ("\ufeffAgent\u00ad", "Agent"),  # BOM, soft hyphen
        ("tag\U000e0041\U000e0042", "tag"),  # tag characters
        ("pua\ue000", "pua"),  # private use
        ("Hangul\u3164filler\u115f", "Hangulfiller"),  # blank letters
        ("wide\u3000\u00a0\u2003 space", "wide space"),  # other spaces become one space
        ("  padded  ", "padded"),
        ("x\u0301\u0302\u0303\u0304\u0305\u0306\u0307", "x\u0301\u0302\u0303\u0304"),  # stacked marks
        ("Cafe\u0301", "Caf\u00e9"),  # NFC
        ("\u0645\u0631\u062d\u0628\u0627", "\u0645\u0631\u062d\u0628\u0627"),  # RTL text itself is fine
        ("\U0001f469\u200d\U0001f4bb Agent", "\U0001f469\U0001f4bb Agent"),
    ],
)
def test_invisible_characters_are_stripped_from_every_displayed_field(raw: str, shown: str) -> None:
    m = validate_client_metadata(meta(client_name=raw, software_id=raw, software_version=raw))
    assert (m.client_name, m.software_id, m.software_version) == (shown, shown, shown)
    assert m.to_json()["client_name"] == shown


def test_every_format_character_is_removed() -> None:
    import sys
    import unicodedata

    from functions.core.clients.metadata import display_text

    cf = "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")
    assert len(cf) > 100
    assert display_text(f"a{cf}b") == "ab"


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
