"""Client metadata validation (RFC 7591): fields, bounds, narrowing, displayed text."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients.metadata import MAX_NAME_LENGTH, bounded_client_name, validate_client_metadata
from functions.core.oauth.uris import MAX_URI_LENGTH
from functions.core.platform.errors import OAuthError
from tests.helpers import CLAUDE_METADATA
from tests.unit.metadata_docs import meta, rejected


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
        # Unhashable JSON values: a membership test alone raised TypeError (a 500).
        ("application_type", ["native"], "application_type"),
        ("application_type", {"native": True}, "application_type"),
        ("client_uri", 5, "string"),
        ("logo_uri", ["https://app.example.com/logo.png"], "string"),
        ("logo_uri", "", "string"),
        ("client_name", "x" * 201, "longer"),
        ("client_name", "\ufb2c" * 100, "longer"),  # 100 characters, 300 once NFC-normalised
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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_uri", "http://localhost:3000"),  # development clients send these
        ("client_uri", "javascript:alert(1)"),
        ("client_uri", "https://app.example.com/a b"),
        ("logo_uri", "https://user@app.example.com/logo.png"),
        ("logo_uri", "https://app.example.com/" + "a" * MAX_URI_LENGTH),
        ("logo_uri", "https:///no-host.png"),
        ("logo_uri", "https://app.example.com/\u00e9.png"),
    ],
)
def test_a_display_url_that_is_not_a_plain_https_url_is_dropped_not_refused(field: str, value: str) -> None:
    # RFC 7591 section 3.2.1: the server may replace requested values; no flow depends on these.
    m = validate_client_metadata(meta(**{field: value}))
    assert getattr(m, field) is None
    assert field not in m.to_json()
    kept = validate_client_metadata(meta(**{field: "https://app.example.com/x"}))
    assert getattr(kept, field) == "https://app.example.com/x"


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


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_scope_is_no_scope_requested(blank: str) -> None:
    # The MCP Inspector registers with "scope": "" when it has discovered none (RFC 7591
    # section 3.2.1: the server may replace requested values; it is the same as omitting it).
    m = validate_client_metadata(meta(scope=blank))
    assert m.scope is None
    assert "scope" not in m.to_json()
    assert m.dedupe_key() == validate_client_metadata(meta()).dedupe_key()


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


@pytest.mark.parametrize(
    ("declared", "recorded"),
    [
        (None, ""),
        ("", ""),
        ("  Claude  ", "Claude"),
        ("Ev\u202eil\u2066 Agent", "Evil Agent"),  # bidi override and isolate (UTR 36)
        ("Bell\x07 and\u200b\u2028 zero\x00width", "Bell and zerowidth"),  # controls, Cf, Zl
        ("\ud800lone surrogate", "lone surrogate"),
        ("\u202e\u200b", ""),  # nothing visible left
    ],
)
def test_a_recorded_client_name_keeps_only_visible_text(declared: str | None, recorded: str) -> None:
    assert bounded_client_name(declared) == recorded


def test_a_recorded_client_name_never_exceeds_the_bound() -> None:
    assert len(bounded_client_name("n" * (MAX_NAME_LENGTH * 5))) == MAX_NAME_LENGTH
    # Trimmed after the cut: no trailing space where the cut fell on one.
    assert bounded_client_name("a" * (MAX_NAME_LENGTH - 1) + " b") == "a" * (MAX_NAME_LENGTH - 1)
