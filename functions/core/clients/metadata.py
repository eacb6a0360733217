"""Client metadata validation, shared by DCR (RFC 7591) and Client ID Metadata Documents.

One function, ``validate_client_metadata``, turns an untrusted JSON object into a
``ClientMetadata`` or raises ``OAuthError`` with the RFC 7591 section 3.2.2 error code
(``invalid_redirect_uri`` or ``invalid_client_metadata``). Every field is type-checked and
bounded; unknown fields are ignored (RFC 7591 section 2: "The authorization server MUST
ignore any client metadata sent by the client that it does not understand").

Liberal in what is accepted, strict in what is granted (RFC 7591 section 3.2.1): grant and
response types this server does not offer are dropped, scopes outside the catalogue are
dropped, invisible characters are removed from displayed text, and the answer shows what
was registered. Only what cannot be served at all is refused.

Each redirect URI is checked by ``functions.core.clients.redirect_uris`` (fixed rules, then the
operator's patterns of ``functions.core.clients.redirect_patterns``).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from functions.core.clients.records import AuthMethod
from functions.core.clients.redirect_uris import check_redirect_uri
from functions.core.oauth.scopes import scope_names
from functions.core.oauth.uris import MAX_URI_LENGTH, URI_FORBIDDEN, split_uri
from functions.core.platform.errors import OAuthError

ApplicationType = Literal["web", "native"]

AUTH_METHODS: Final[frozenset[str]] = frozenset({"none", "client_secret_basic", "client_secret_post"})
GRANT_TYPES: Final[frozenset[str]] = frozenset({"authorization_code", "refresh_token"})
RESPONSE_TYPES: Final[frozenset[str]] = frozenset({"code"})
APPLICATION_TYPES: Final[frozenset[str]] = frozenset({"web", "native"})

# Bounds on every field (and on list lengths), so a stored or cached record stays small.
MAX_REDIRECT_URIS: Final = 10
MAX_NAME_LENGTH: Final = 200
MAX_SOFTWARE_ID_LENGTH: Final = 200
MAX_SOFTWARE_VERSION_LENGTH: Final = 100
MAX_LIST_ITEMS: Final = 10
MAX_SCOPE_LENGTH: Final = 1000

# Control characters, and lone UTF-16 surrogates (JSON "\ud800" parses to one): neither can
# be stored as UTF-8 or shown safely on the consent page, so text holding them is refused.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# Fields this server understands; the order is the order of the returned metadata.
KNOWN_FIELDS: Final = (
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "application_type",
    "client_uri",
    "logo_uri",
    "software_id",
    "software_version",
)


@dataclass(frozen=True)
class ClientMetadata:
    """Accepted client metadata with server defaults applied (RFC 7591 section 3.2.1)."""

    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    application_type: ApplicationType
    client_name: str | None = None
    scope: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    software_id: str | None = None
    software_version: str | None = None

    @property
    def is_public(self) -> bool:
        """A public client (``token_endpoint_auth_method`` = ``none``, RFC 6749 section 2.1)."""
        return self.token_endpoint_auth_method == "none"

    def to_json(self) -> dict[str, Any]:
        """The metadata as returned to the client and stored (``metadata`` attribute)."""
        doc: dict[str, Any] = {}
        for name in KNOWN_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            doc[name] = list(value) if isinstance(value, tuple) else value
        return doc

    def canonical(self) -> str:
        """Canonical JSON (sorted keys, sorted de-duplicated lists) for de-duplication."""
        doc = self.to_json()
        for key, value in doc.items():
            if isinstance(value, list):
                doc[key] = sorted(set(value))
        if "scope" in doc:
            doc["scope"] = " ".join(sorted(set(doc["scope"].split())))
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def dedupe_key(self) -> str:
        """SHA-256 hex of ``canonical()``: identical public registrations share one client."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()


def _metadata_error(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def _redirect_error(description: str) -> OAuthError:
    return OAuthError("invalid_redirect_uri", description)


def _https_uri_or_none(name: str, value: object) -> str | None:
    """``value`` when it is an https URL the kit keeps, ``None`` (dropped) for any other URL string.

    Raises ``invalid_client_metadata`` only for a value that is not a non-empty string. Only
    https URLs with a host and no userinfo, within MAX_URI_LENGTH, are kept. Clients send
    others (``http://localhost:3000`` from development clients): RFC 7591 section 3.2.1
    lets the server replace a requested value, so the registration goes on without it (the
    response omits it) instead of failing for a field no flow depends on.
    """
    if not isinstance(value, str) or not value:
        raise _metadata_error(f"{name} must be a non-empty string")
    if len(value) > MAX_URI_LENGTH or URI_FORBIDDEN.search(value) or not value.isascii():
        return None
    parts = split_uri(value)
    # Kept only as a URL a browser could be shown safely: https, a host, no userinfo.
    if parts is None or parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    return value


# Unicode general categories removed from displayed text: format characters (Cf: bidi
# embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069, marks U+200E/F/U+061C,
# zero-width space/joiners, U+FEFF, soft hyphen, tag characters), line and paragraph
# separators (Zl, Zp: U+2028/U+2029 break the line), private-use (Co) and unassigned (Cn)
# code points, whose rendering is undefined.
_INVISIBLE_CATEGORIES: Final = frozenset({"Cf", "Zl", "Zp", "Co", "Cn"})
# Letters and marks that render as nothing: Hangul fillers, the braille blank, the
# combining grapheme joiner and the Mongolian free variation selectors.
_BLANK_CHARACTERS: Final = frozenset("\u034f\u115f\u1160\u180b\u180c\u180d\u2800\u3164\uffa0")
# Stacked combining marks ("Zalgo") spill over neighbouring lines; real scripts need few.
MAX_COMBINING_MARKS: Final = 4


def display_text(value: str) -> str:
    """Text safe to show on the consent page: what is visible is what is stored.

    Unicode Technical Report 36 ("Unicode Security Considerations", bidirectional text
    spoofing) and UTS 39 section 5: invisible characters let a name read differently from
    what it contains (U+202E reverses the rest of the line). NFC-normalised, then the
    invisible characters above are removed, every space separator (Zs: no-break, em, ideo-
    graphic spaces...) becomes one ASCII space, runs of spaces collapse, the ends are trimmed,
    and at most ``MAX_COMBINING_MARKS`` combining marks follow any character. Control
    characters are not handled here: ``_check_text`` refuses them.
    """
    out: list[str] = []
    marks = 0
    for char in unicodedata.normalize("NFC", value):
        category = unicodedata.category(char)
        if category in _INVISIBLE_CATEGORIES or char in _BLANK_CHARACTERS:
            continue
        if category in ("Mn", "Me"):
            marks += 1
            if marks > MAX_COMBINING_MARKS:
                continue
        else:
            marks = 0
        out.append(" " if category == "Zs" else char)
    return " ".join("".join(out).split())


def bounded_client_name(value: str | None) -> str:
    """A client's self-declared ``client_name`` (RFC 7591 section 2) as a grant records it.

    The name is unverified: any registrant or CIMD document may claim any name. It is
    copied into grants, audit events and listings, so it gets the consent page's treatment
    whatever its source: control characters and lone surrogates removed (``_CONTROL``), then
    ``display_text`` (bidi and other invisible characters, UTR 36), then cut to at most
    ``MAX_NAME_LENGTH`` characters and trimmed. Returns ``""`` for None or a name with nothing
    visible left; never raises.
    """
    if not value:
        return ""
    return display_text(_CONTROL.sub("", value))[:MAX_NAME_LENGTH].strip()


def _check_text(name: str, value: object, limit: int) -> str:
    """A displayed text field (client_name, software_id, software_version).

    RFC 7591 section 3.2.1 lets the server replace a requested value: invisible characters
    are stripped (``display_text``) rather than refused, so a name with an emoji joiner
    still registers, and the response shows the text as stored. Control characters and
    lone surrogates cannot be stored or shown at all and are refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise _metadata_error(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise _metadata_error(f"{name} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise _metadata_error(f"{name} must not contain control characters")
    text = display_text(value)
    if not text:
        raise _metadata_error(f"{name} must contain visible characters")
    if len(text) > limit:  # NFC can lengthen text (U+FB2C is three code points after it)
        raise _metadata_error(f"{name} is longer than {limit} characters")
    return text


def _string_list(name: str, value: object, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _metadata_error(f"{name} must be a non-empty array of strings")
    if len(value) > limit:
        raise _metadata_error(f"{name} has more than {limit} entries")
    if not all(isinstance(v, str) for v in value):
        raise _metadata_error(f"{name} must contain only strings")
    return tuple(dict.fromkeys(cast(list[str], value)))  # de-duplicate, keep order


def _check_scope(value: object) -> str | None:
    """The requested ``scope`` narrowed to the catalogue; None when nothing is left.

    A blank string ("") is a request for no particular scope, like an omitted one (RFC 7591
    section 3.2.1: the server may replace requested values): the MCP Inspector and the Gemini
    CLI register with ``"scope": ""`` when they have none to ask for. Not a string, or longer than
    ``MAX_SCOPE_LENGTH``: ``invalid_client_metadata``.
    """
    if not isinstance(value, str):
        raise _metadata_error("scope must be a space-separated string")
    if len(value) > MAX_SCOPE_LENGTH:
        raise _metadata_error(f"scope is longer than {MAX_SCOPE_LENGTH} characters")
    # RFC 7591 section 2 ("scope") and 3.2.1: the server decides which scopes a client may use
    # and may replace requested metadata values. Real agents register with OIDC scopes such as
    # "openid offline_access"; refusing them would break registration, so only catalogue
    # scopes are kept (none left: the field is dropped) and the response shows what was kept.
    kept = [n for n in dict.fromkeys(value.split()) if n in scope_names()]
    return " ".join(kept) or None


def validate_client_metadata(
    raw: Mapping[str, Any],
    *,
    redirect_patterns: Sequence[str] = (),
    allowed_auth_methods: Collection[str] = AUTH_METHODS,
    default_auth_method: AuthMethod = "client_secret_basic",
) -> ClientMetadata:
    """Validate untrusted metadata; raise ``OAuthError`` (RFC 7591 section 3.2.2) on any problem.

    ``default_auth_method``: RFC 7591 section 2 makes ``client_secret_basic`` the default
    when ``token_endpoint_auth_method`` is omitted; CIMD passes ``none`` (no shared secrets).
    """
    if not isinstance(raw, Mapping):
        raise _metadata_error("client metadata must be a JSON object")
    # A member sent as null is treated as omitted (RFC 7592 section 2.2 treats omitted and
    # null alike); clients commonly serialize unset optional fields that way.
    raw = {k: v for k, v in raw.items() if v is not None}

    # redirect_uris: required, because the only grant this server offers is redirect-based
    # (RFC 7591 section 2, "redirect_uris").
    if "redirect_uris" not in raw:
        raise _redirect_error("redirect_uris is required")
    value = raw["redirect_uris"]
    if not isinstance(value, list) or not value:
        raise _redirect_error("redirect_uris must be a non-empty array of strings")
    if len(value) > MAX_REDIRECT_URIS:
        raise _redirect_error(f"redirect_uris has more than {MAX_REDIRECT_URIS} entries")
    redirect_uris = tuple(dict.fromkeys(check_redirect_uri(u, redirect_patterns) for u in value))

    # RFC 7591 section 2: grant_types defaults to ["authorization_code"], response_types to
    # ["code"]; only the authorization code flow (and its refresh) exists in OAuth 2.1 here.
    # RFC 7591 section 3.2.1: the server MAY replace requested values and MUST answer with
    # what it registered. Types this server does not serve (Claude lists jwt-bearer, others
    # list implicit or client_credentials) are dropped, not fatal: the client can still use
    # the flow it shares with us. Refused only when that flow itself is missing.
    grant_types: tuple[str, ...] = ("authorization_code",)
    if "grant_types" in raw:
        requested = _string_list("grant_types", raw["grant_types"], MAX_LIST_ITEMS)
        if "authorization_code" not in requested:
            raise _metadata_error("grant_types must include authorization_code")
        grant_types = tuple(g for g in requested if g in GRANT_TYPES)
    response_types: tuple[str, ...] = ("code",)
    if "response_types" in raw:
        requested = _string_list("response_types", raw["response_types"], MAX_LIST_ITEMS)
        response_types = tuple(r for r in requested if r in RESPONSE_TYPES)
        if not response_types:
            raise _metadata_error("response_types must include code")

    # A single value, not a list, so there is nothing to narrow it to. An unknown method
    # (private_key_jwt, tls_client_auth, ...) is refused rather than replaced: substituting
    # a shared secret, or "none", would change how the client proves itself at the token
    # endpoint to something it never declared (strict in what is granted; RFC 7591 section
    # 2 and 3.2.2 invalid_client_metadata). The supported methods are advertised in the
    # RFC 8414 metadata (token_endpoint_auth_methods_supported), so a client can pick one.
    auth_method: str = default_auth_method
    if "token_endpoint_auth_method" in raw:
        auth_method = raw["token_endpoint_auth_method"]
        if not isinstance(auth_method, str) or auth_method not in AUTH_METHODS:
            raise _metadata_error("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
    if auth_method not in allowed_auth_methods:
        raise _metadata_error("token_endpoint_auth_method must be one of: " + ", ".join(sorted(allowed_auth_methods)))

    application_type = raw.get("application_type", "web")
    # Type first: a JSON array or object is unhashable, so the membership test alone would
    # raise TypeError (a 500 at /register, and at /authorize for a CIMD document).
    if not isinstance(application_type, str) or application_type not in APPLICATION_TYPES:
        raise _metadata_error("application_type must be web or native")

    optional: dict[str, str | None] = {}
    for name, limit in (
        ("client_name", MAX_NAME_LENGTH),
        ("software_id", MAX_SOFTWARE_ID_LENGTH),
        ("software_version", MAX_SOFTWARE_VERSION_LENGTH),
    ):
        optional[name] = _check_text(name, raw[name], limit) if raw.get(name) is not None else None
    for name in ("client_uri", "logo_uri"):
        optional[name] = _https_uri_or_none(name, raw[name]) if raw.get(name) is not None else None
    scope = _check_scope(raw["scope"]) if raw.get("scope") is not None else None

    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=cast(AuthMethod, auth_method),
        grant_types=grant_types,
        response_types=response_types,
        application_type=cast(ApplicationType, application_type),
        client_name=optional["client_name"],
        scope=scope,
        client_uri=optional["client_uri"],
        logo_uri=optional["logo_uri"],
        software_id=optional["software_id"],
        software_version=optional["software_version"],
    )
