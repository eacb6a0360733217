"""Client metadata validation, shared by DCR (RFC 7591) and Client ID Metadata Documents.

One function, ``validate_client_metadata``, turns an untrusted JSON object into a
``ClientMetadata`` or raises ``OAuthError`` with the RFC 7591 section 3.2.2 error code
(``invalid_redirect_uri`` or ``invalid_client_metadata``). Every field is type-checked and
bounded; unknown fields are ignored (RFC 7591 section 2: "The authorization server MUST
ignore any client metadata sent by the client that it does not understand").

``redirect_uri_allowed`` applies the operator's redirect URI patterns (structured matching,
see its docstring). ``redirect_uri_matches`` is the one comparison the authorization and token functions use:
exact string match (OAuth 2.1 section 2.3.1), except that a loopback http redirect URI
matches on any port (RFC 8252 section 7.3).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast
from urllib.parse import SplitResult, urlsplit

from functions.core.clients import AuthMethod
from functions.core.errors import OAuthError
from functions.core.scopes import SCOPE_NAMES

ApplicationType = Literal["web", "native"]

AUTH_METHODS: Final[frozenset[str]] = frozenset({"none", "client_secret_basic", "client_secret_post"})
GRANT_TYPES: Final[frozenset[str]] = frozenset({"authorization_code", "refresh_token"})
RESPONSE_TYPES: Final[frozenset[str]] = frozenset({"code"})
APPLICATION_TYPES: Final[frozenset[str]] = frozenset({"web", "native"})

# Bounds on every field (and on list lengths), so a stored or cached record stays small.
MAX_REDIRECT_URIS: Final = 10
MAX_URI_LENGTH: Final = 2000
MAX_NAME_LENGTH: Final = 200
MAX_SOFTWARE_ID_LENGTH: Final = 200
MAX_SOFTWARE_VERSION_LENGTH: Final = 100
MAX_LIST_ITEMS: Final = 10
MAX_SCOPE_LENGTH: Final = 1000

LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"localhost", "127.0.0.1", "::1"})
# Schemes that execute or read content instead of navigating back to an app.
DANGEROUS_SCHEMES: Final[frozenset[str]] = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
# RFC 8252 section 7.1: a private-use scheme in reverse domain name form, e.g. com.example.app.
_PRIVATE_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
# Control characters and whitespace never belong in a URI or a display string.
# Control characters, and lone UTF-16 surrogates (JSON "\ud800" parses to one): neither can
# be stored as UTF-8 or shown safely on the consent page.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_URI_FORBIDDEN: Final = re.compile(r"[\x00-\x20\x7f\\<>\"{}|^`]")

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
        return hashlib.sha256(self.canonical().encode()).hexdigest()


def _metadata_error(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def _redirect_error(description: str) -> OAuthError:
    return OAuthError("invalid_redirect_uri", description)


def _split(uri: str) -> SplitResult | None:
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    return parts


def _has_userinfo(parts: SplitResult) -> bool:
    return "@" in parts.netloc


def check_redirect_uri(uri: object, patterns: Sequence[str] = ()) -> str:
    """Validate one redirect URI; raise ``invalid_redirect_uri`` naming the broken rule.

    The error names the rule, never echoes the value (it is attacker-supplied text).
    ``patterns`` (the operator's REGISTRATION_REDIRECT_PATTERNS) are matched component by
    component by ``redirect_uri_allowed``; empty means any URI the fixed rules allow.
    """
    if not isinstance(uri, str) or not uri:
        raise _redirect_error("each redirect URI must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise _redirect_error(f"a redirect URI is longer than {MAX_URI_LENGTH} characters")
    if _URI_FORBIDDEN.search(uri) or not uri.isascii():
        raise _redirect_error("a redirect URI contains whitespace, control or non-ASCII characters")
    # RFC 6749 section 3.1.2: the redirection endpoint URI MUST NOT include a fragment.
    if "#" in uri:
        raise _redirect_error("a redirect URI must not contain a fragment")
    # OAuth 2.1 section 2.3.1 / RFC 9700 section 4.1.3: exact matching, so no wildcards.
    if "*" in uri:
        raise _redirect_error("a redirect URI must not contain a wildcard")
    parts = _split(uri)
    if parts is None or not parts.scheme:
        raise _redirect_error("a redirect URI must be an absolute URI")
    scheme = parts.scheme
    if not uri.startswith(scheme + ":"):  # urlsplit lower-cases the scheme; we match exactly
        raise _redirect_error("a redirect URI scheme must be lower case")
    if scheme in DANGEROUS_SCHEMES:
        raise _redirect_error(f"the {scheme}: scheme is not allowed in a redirect URI")
    # RFC 9700 section 4.1.1 / RFC 3986 section 7.5: userinfo enables open-redirect tricks.
    if _has_userinfo(parts):
        raise _redirect_error("a redirect URI must not contain userinfo")
    if scheme == "https":
        if not parts.hostname:
            raise _redirect_error("an https redirect URI must have a host")
    elif scheme == "http":
        # OAuth 2.1 section 2.3.1 / RFC 8252 section 7.3: plain http only on the loopback
        # interface of the device the native app runs on.
        if parts.hostname not in LOOPBACK_HOSTS:
            raise _redirect_error("an http redirect URI must use a loopback host (localhost, 127.0.0.1, [::1])")
    elif not _PRIVATE_SCHEME.match(scheme):
        # RFC 8252 section 7.1: private-use schemes MUST be reverse domain names.
        raise _redirect_error("a redirect URI must be https, loopback http, or a reverse-domain private-use scheme")
    if patterns and not redirect_uri_allowed(parts, patterns):
        raise _redirect_error("a redirect URI is not allowed by this server's registration policy")
    return uri


@dataclass(frozen=True)
class RedirectPattern:
    """One parsed operator pattern; see ``redirect_uri_allowed`` for the syntax."""

    scheme: str
    host: str  # lower case, brackets removed; "" when the pattern has no authority
    host_suffix: str | None  # ".corp.example" for "*.corp.example", else None
    port: int | Literal["*"] | None  # None: no port in the pattern
    path: str  # fnmatch pattern applied to the path only
    query: str  # "" or the exact query a URI may carry


# A DNS label (RFC 1123 section 2.1): letters, digits and inner hyphens.
_DNS_LABEL: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def parse_redirect_pattern(pattern: str) -> RedirectPattern:
    """Parse an operator pattern; ``ValueError`` when it is not of the documented form."""
    if "#" in pattern or "@" in pattern or _URI_FORBIDDEN.search(pattern) or not pattern.isascii():
        raise ValueError("a redirect pattern must not contain a fragment, userinfo or odd characters")
    try:
        parts = urlsplit(pattern)  # does not parse the port, so "host:*" is fine here
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError("a redirect pattern is not a URI") from exc
    if not parts.scheme or "*" in parts.scheme:
        raise ValueError("a redirect pattern needs a literal scheme")
    host, port_text = parts.netloc, ""
    if host.startswith("["):  # an IPv6 literal, e.g. [::1]:*
        end = host.find("]")
        if end < 0 or (host[end + 1 :] and not host[end + 1 :].startswith(":")):
            raise ValueError("a redirect pattern has a malformed IPv6 host")
        host, port_text = host[1:end], host[end + 2 :]
    elif ":" in host:
        host, port_text = host.rsplit(":", 1)
        if not port_text:
            raise ValueError("a redirect pattern has an empty port")
    host = host.lower()
    suffix: str | None = None
    if host.startswith("*."):
        suffix = host[1:]
        if not all(_DNS_LABEL.match(label) for label in suffix[1:].split(".")):
            raise ValueError("a host wildcard must be '*.' followed by whole DNS labels")
    if "*" in (suffix or host):
        raise ValueError("a host wildcard is allowed only as a leading '*.' label")
    if parts.netloc and not host:
        raise ValueError("a redirect pattern with an authority needs a host")
    port: int | Literal["*"] | None = None
    if port_text == "*":
        port = "*"
    elif port_text:
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError("a redirect pattern port must be a number or '*'")
        port = int(port_text)
    if "*" in parts.query:
        raise ValueError("a redirect pattern query is matched exactly and cannot hold a wildcard")
    return RedirectPattern(parts.scheme.lower(), host, suffix, port, parts.path, parts.query)


def _host_matches(pattern: RedirectPattern, host: str) -> bool:
    if pattern.host_suffix is None:
        return host == pattern.host
    # "*." stands for one or more WHOLE labels: the URI host must end with ".suffix" and
    # what comes before must itself be dot-separated DNS labels (no empty label, no "@",
    # "/" or ":" can reach here because urlsplit already separated them out).
    if not host.endswith(pattern.host_suffix):
        return False
    prefix = host[: -len(pattern.host_suffix)]
    return bool(prefix) and all(_DNS_LABEL.match(label) for label in prefix.split("."))


def _pattern_matches(pattern: RedirectPattern, parts: SplitResult) -> bool:
    if parts.scheme.lower() != pattern.scheme:
        return False
    if not _host_matches(pattern, (parts.hostname or "").lower()):
        return False
    if pattern.port != "*" and parts.port != pattern.port:
        return False
    # A query can carry an open-redirect target (RFC 9700 section 4.1.3): none, or exactly
    # the one the operator wrote.
    if parts.query and parts.query != pattern.query:
        return False
    # The path is the only component a '*' may span ('/' included): origin is pinned above.
    return fnmatch.fnmatchcase(parts.path, pattern.path)


def redirect_uri_allowed(uri: str | SplitResult, patterns: Sequence[str]) -> bool:
    """Whether a redirect URI satisfies at least one operator pattern (fails closed).

    RFC 9700 section 4.1.3 / OAuth 2.1 section 2.3.1: pattern matching of redirect URIs
    invites open redirectors, so a pattern is parsed into components and each URI
    component is compared on its own, never as one glob over the whole string:

    * ``scheme``: equal, case-insensitive (``https``, ``http``, or a private-use scheme);
    * host: equal, case-insensitive; or ``*.suffix``, where ``*`` stands for one or more
      whole DNS labels (``*.corp.example`` matches ``a.corp.example`` and
      ``a.b.corp.example``, not ``corp.example`` nor ``evilcorp.example``). No other
      wildcard is allowed in the host. A pattern without an authority (``com.example.app:/*``)
      matches only URIs without one;
    * port: equal (an absent port matches only an absent port), or ``*`` for any port or none,
      e.g. ``http://127.0.0.1:*/callback`` for RFC 8252 section 7.3 loopback redirects;
    * path: an fnmatch pattern over the path alone (``*`` may span ``/`` there);
    * query: a URI without a query passes; a URI with one matches only a pattern with
      exactly that query (no wildcard).

    Examples: ``https://*.corp.example/*``, ``http://localhost:*/cb``, ``com.example.app:/*``.
    A pattern that is not of this form matches nothing.
    """
    if isinstance(uri, str):
        split = _split(uri)
        if split is None:
            return False
        uri = split
    # RFC 9700 section 4.1.1 / RFC 3986 section 7.5: userinfo only serves to disguise a host.
    if "@" in uri.netloc:
        return False
    for text in patterns:
        try:
            pattern = parse_redirect_pattern(text.strip())
        except ValueError:
            continue  # fail closed: a malformed operator pattern allows nothing
        if _pattern_matches(pattern, uri):
            return True
    return False


def _check_https_uri(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _metadata_error(f"{name} must be a non-empty string")
    if len(value) > MAX_URI_LENGTH:
        raise _metadata_error(f"{name} is longer than {MAX_URI_LENGTH} characters")
    if _URI_FORBIDDEN.search(value) or not value.isascii():
        raise _metadata_error(f"{name} contains whitespace, control or non-ASCII characters")
    parts = _split(value)
    # These URIs are shown to (or fetched by) the user's browser: https only, no userinfo.
    if parts is None or parts.scheme != "https" or not parts.hostname or _has_userinfo(parts):
        raise _metadata_error(f"{name} must be an https URL with a host and no userinfo")
    return value


def _check_text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _metadata_error(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise _metadata_error(f"{name} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise _metadata_error(f"{name} must not contain control characters")
    return value


def _string_list(name: str, value: object, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _metadata_error(f"{name} must be a non-empty array of strings")
    if len(value) > limit:
        raise _metadata_error(f"{name} has more than {limit} entries")
    if not all(isinstance(v, str) for v in value):
        raise _metadata_error(f"{name} must contain only strings")
    return tuple(dict.fromkeys(cast(list[str], value)))  # de-duplicate, keep order


def _check_scope(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        raise _metadata_error("scope must be a non-empty, space-separated string")
    if len(value) > MAX_SCOPE_LENGTH:
        raise _metadata_error(f"scope is longer than {MAX_SCOPE_LENGTH} characters")
    # RFC 7591 section 2 ("scope") and 3.2.1: the server decides which scopes a client may use
    # and may replace requested metadata values. Real agents register with OIDC scopes such as
    # "openid offline_access"; refusing them would break registration, so only catalogue
    # scopes are kept (none left: the field is dropped) and the response shows what was kept.
    kept = [n for n in dict.fromkeys(value.split()) if n in SCOPE_NAMES]
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
    grant_types: tuple[str, ...] = ("authorization_code",)
    if "grant_types" in raw:
        grant_types = _string_list("grant_types", raw["grant_types"], MAX_LIST_ITEMS)
        if not set(grant_types) <= GRANT_TYPES:
            raise _metadata_error("grant_types may contain only authorization_code and refresh_token")
        if "authorization_code" not in grant_types:
            raise _metadata_error("grant_types must include authorization_code")
    response_types: tuple[str, ...] = ("code",)
    if "response_types" in raw:
        response_types = _string_list("response_types", raw["response_types"], MAX_LIST_ITEMS)
        if not set(response_types) <= RESPONSE_TYPES:
            raise _metadata_error("response_types may contain only code")

    auth_method: str = default_auth_method
    if "token_endpoint_auth_method" in raw:
        auth_method = raw["token_endpoint_auth_method"]
        if not isinstance(auth_method, str) or auth_method not in AUTH_METHODS:
            raise _metadata_error("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
    if auth_method not in allowed_auth_methods:
        raise _metadata_error("token_endpoint_auth_method must be one of: " + ", ".join(sorted(allowed_auth_methods)))

    application_type = raw.get("application_type", "web")
    if application_type not in APPLICATION_TYPES:
        raise _metadata_error("application_type must be web or native")

    optional: dict[str, str | None] = {}
    for name, limit in (
        ("client_name", MAX_NAME_LENGTH),
        ("software_id", MAX_SOFTWARE_ID_LENGTH),
        ("software_version", MAX_SOFTWARE_VERSION_LENGTH),
    ):
        optional[name] = _check_text(name, raw[name], limit) if raw.get(name) is not None else None
    for name in ("client_uri", "logo_uri"):
        optional[name] = _check_https_uri(name, raw[name]) if raw.get(name) is not None else None
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


def is_loopback_redirect(uri: str) -> bool:
    parts = _split(uri)
    return parts is not None and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact match (OAuth 2.1 section 2.3.1), except the port of a loopback http URI.

    RFC 8252 section 7.3: the authorization server MUST allow any port for loopback IP
    redirect URIs, since native apps get an ephemeral port from the OS at request time.
    Scheme, host, path and query must still be identical.
    """
    if registered == presented:
        return True
    if "#" in presented or "@" in presented or not is_loopback_redirect(registered):
        return False
    reg, pre = _split(registered), _split(presented)
    if reg is None or pre is None or not is_loopback_redirect(presented):
        return False
    if reg.query != pre.query or reg.path != pre.path or reg.hostname != pre.hostname:
        return False
    # Everything but the port must be byte-identical: rebuild both without the port.
    return _without_port(registered, reg) == _without_port(presented, pre)


def _without_port(uri: str, parts: SplitResult) -> str:
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    if parts.netloc.endswith(":"):  # "http://127.0.0.1:/cb": an empty port
        host = parts.netloc[:-1]
    rest = uri[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"{parts.scheme}://{host}{rest}"
