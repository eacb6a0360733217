"""Redirect URIs: the fixed safety rules, the operator's patterns, and the one comparison.

* ``check_redirect_uri`` validates a URI at registration (DCR and Client ID Metadata
  Documents) and returns it in normal form (``normalize_redirect_uri``);
* ``redirect_uri_allowed`` applies the operator's REGISTRATION_REDIRECT_PATTERNS (structured
  matching, see its docstring);
* ``redirect_uri_matches`` is the one comparison the authorization and token functions use:
  exact string match (OAuth 2.1 section 2.3.1) after the one RFC 3986 section 6.2.3
  normalisation that changes nothing but spelling (an empty http(s) path is "/"), except that
  a loopback http redirect URI matches on any port (RFC 8252 section 7.3).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit

from functions.core.platform.errors import OAuthError

MAX_URI_LENGTH: Final = 2000
LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"localhost", "127.0.0.1", "::1"})
# Schemes that execute or read content instead of navigating back to an app.
DANGEROUS_SCHEMES: Final[frozenset[str]] = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
# RFC 8252 section 7.1: a private-use scheme in reverse domain name form, e.g. com.example.app.
_PRIVATE_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
URI_FORBIDDEN: Final = re.compile(r"[\x00-\x20\x7f\\<>\"{}|^`]")
# RFC 3986 section 6.2.3: for these schemes an empty path is equivalent to "/".
_EMPTY_PATH_IS_SLASH: Final = frozenset({"http", "https"})


def _redirect_error(description: str) -> OAuthError:
    return OAuthError("invalid_redirect_uri", description)


def split_uri(uri: str) -> SplitResult | None:
    """``urlsplit`` with the port parsed; None when the URI (or its port) is malformed."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    return parts


def normalize_redirect_uri(uri: str) -> str:
    """RFC 3986 section 6.2.3: ``http://host:port`` becomes ``http://host:port/`` (http/https).

    Only the empty path is normalised; everything else stays as written, because redirect
    URIs are otherwise compared as exact strings (OAuth 2.1 section 2.3.1). A URI that does
    not parse is returned unchanged (and matches only itself).
    """
    parts = split_uri(uri)
    if parts is None or parts.scheme not in _EMPTY_PATH_IS_SLASH or parts.path or not parts.netloc:
        return uri
    cut = len(parts.scheme) + 3 + len(parts.netloc)  # "scheme://netloc"
    return f"{uri[:cut]}/{uri[cut:]}"


def _standard_form(parts: SplitResult) -> bool:
    """https, or a reverse-domain private-use scheme (RFC 8252 section 7.1)."""
    return parts.scheme in ("https", "http") or bool(_PRIVATE_SCHEME.match(parts.scheme))


def check_redirect_uri(uri: object, patterns: Sequence[str] = ()) -> str:
    """Validate one redirect URI; return it normalised, or raise ``invalid_redirect_uri``.

    The error names the rule, never echoes the value (it is attacker-supplied text).
    ``patterns`` are the operator's REGISTRATION_REDIRECT_PATTERNS (``redirect_uri_allowed``).
    The fixed rules below come first and no pattern can lift them: no fragment, wildcard,
    userinfo, dangerous scheme, upper-case scheme, or plain http to a non-loopback host.
    Patterns then:

    * narrow: when any pattern names https, http or a reverse-domain scheme, every URI must
      match some pattern;
    * widen: a private-use scheme that is not in reverse-domain form (``cursor://...``) is
      refused (RFC 8252 section 7.1) unless a pattern with that scheme matches it. A list of
      only such patterns adds those URIs and narrows nothing.
    """
    if not isinstance(uri, str) or not uri:
        raise _redirect_error("each redirect URI must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise _redirect_error(f"a redirect URI is longer than {MAX_URI_LENGTH} characters")
    if URI_FORBIDDEN.search(uri) or not uri.isascii():
        raise _redirect_error("a redirect URI contains whitespace, control or non-ASCII characters")
    # RFC 6749 section 3.1.2: the redirection endpoint URI MUST NOT include a fragment.
    if "#" in uri:
        raise _redirect_error("a redirect URI must not contain a fragment")
    # OAuth 2.1 section 2.3.1 / RFC 9700 section 4.1.3: exact matching, so no wildcards.
    if "*" in uri:
        raise _redirect_error("a redirect URI must not contain a wildcard")
    parts = split_uri(uri)
    if parts is None or not parts.scheme:
        raise _redirect_error("a redirect URI must be an absolute URI")
    scheme = parts.scheme
    if not uri.startswith(scheme + ":"):  # urlsplit lower-cases the scheme; we match exactly
        raise _redirect_error("a redirect URI scheme must be lower case")
    if scheme in DANGEROUS_SCHEMES:
        raise _redirect_error(f"the {scheme}: scheme is not allowed in a redirect URI")
    # RFC 9700 section 4.1.1 / RFC 3986 section 7.5: userinfo enables open-redirect tricks.
    if "@" in parts.netloc:
        raise _redirect_error("a redirect URI must not contain userinfo")
    if scheme == "https" and not parts.hostname:
        raise _redirect_error("an https redirect URI must have a host")
    # OAuth 2.1 section 2.3.1 / RFC 8252 section 7.3: plain http only on the loopback
    # interface of the device the native app runs on.
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise _redirect_error("an http redirect URI must use a loopback host (localhost, 127.0.0.1, [::1])")
    policy = _RedirectPolicy.parse(patterns)
    if not _standard_form(parts) and not policy.matches(parts):
        # RFC 8252 section 7.1: private-use schemes MUST be reverse domain names, unless the
        # operator vouches for this one with a pattern.
        raise _redirect_error(
            "a redirect URI must be https, loopback http, or a reverse-domain private-use scheme "
            "(other schemes only when the server's redirect patterns allow them)"
        )
    if policy.narrowing and not policy.matches(parts):
        raise _redirect_error("a redirect URI is not allowed by this server's registration policy")
    return normalize_redirect_uri(uri)


@dataclass(frozen=True)
class RedirectPattern:
    """One parsed operator pattern; see ``redirect_uri_allowed`` for the syntax."""

    scheme: str
    host: str  # lower case, brackets removed; "" when the pattern has no authority
    host_suffix: str | None  # ".corp.example" for "*.corp.example", else None
    port: int | Literal["*"] | None  # None: no port in the pattern
    path: str  # fnmatch pattern applied to the path only
    query: str  # "" or the exact query a URI may carry

    @property
    def widens(self) -> bool:
        """A pattern for a scheme the fixed rules refuse (not https/http/reverse-domain)."""
        return self.scheme not in ("https", "http") and not _PRIVATE_SCHEME.match(self.scheme)


@dataclass(frozen=True)
class _RedirectPolicy:
    patterns: tuple[RedirectPattern, ...]
    narrowing: bool  # some pattern (or a malformed one: fail closed) restricts the standard forms

    @classmethod
    def parse(cls, texts: Sequence[str]) -> _RedirectPolicy:
        parsed: list[RedirectPattern] = []
        narrowing = False
        for text in texts:
            try:
                pattern = parse_redirect_pattern(text.strip())
            except ValueError:
                narrowing = True  # fail closed: a malformed pattern allows nothing, restricts all
                continue
            parsed.append(pattern)
            narrowing = narrowing or not pattern.widens
        return cls(tuple(parsed), narrowing)

    def matches(self, parts: SplitResult) -> bool:
        return "@" not in parts.netloc and any(_pattern_matches(p, parts) for p in self.patterns)


# A DNS label (RFC 1123 section 2.1): letters, digits and inner hyphens.
_DNS_LABEL: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def parse_redirect_pattern(pattern: str) -> RedirectPattern:
    """Parse an operator pattern; ``ValueError`` when it is not of the documented form.

    Patterns that could only ever admit what the fixed rules refuse are errors too (a
    dangerous scheme, or plain http to a non-loopback host), so a mistaken setting fails at
    cold start instead of silently matching nothing.
    """
    if "#" in pattern or "@" in pattern or URI_FORBIDDEN.search(pattern) or not pattern.isascii():
        raise ValueError("a redirect pattern must not contain a fragment, userinfo or odd characters")
    try:
        parts = urlsplit(pattern)  # does not parse the port, so "host:*" is fine here
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError("a redirect pattern is not a URI") from exc
    if not parts.scheme or "*" in parts.scheme:
        raise ValueError("a redirect pattern needs a literal scheme")
    if parts.scheme.lower() in DANGEROUS_SCHEMES:
        raise ValueError(f"a redirect pattern cannot allow the {parts.scheme.lower()}: scheme")
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
    if parts.scheme.lower() == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("an http redirect pattern must name a loopback host (OAuth 2.1 section 2.3.1)")
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

    * ``scheme``: equal, case-insensitive (``https``, loopback ``http``, or a private-use
      scheme; a scheme such as ``cursor`` that is not in reverse-domain form is admitted
      only through a pattern, see ``check_redirect_uri``);
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

    Examples: ``https://*.corp.example/*``, ``http://localhost:*/cb``, ``com.example.app:/*``,
    ``cursor://anysphere.cursor-mcp/*``. A pattern that is not of this form matches nothing.
    """
    if isinstance(uri, str):
        split = split_uri(uri)
        if split is None:
            return False
        uri = split
    return _RedirectPolicy.parse(patterns).matches(uri)


def is_loopback_redirect(uri: str) -> bool:
    parts = split_uri(uri)
    return parts is not None and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact match (OAuth 2.1 section 2.3.1) of normalised URIs, except a loopback port.

    Both sides are normalised with ``normalize_redirect_uri`` (RFC 3986 section 6.2.3: an
    empty http(s) path equals "/"), so ``http://127.0.0.1:33418`` and
    ``http://127.0.0.1:33418/`` are one URI; nothing else is normalised (no case folding,
    no default-port removal, no trailing slash on a non-empty path).
    RFC 8252 section 7.3: the authorization server MUST allow any port for loopback IP
    redirect URIs, since native apps get an ephemeral port from the OS at request time.
    Scheme, host, path and query must still be identical.
    """
    if registered == presented:
        return True
    if "#" in presented or "@" in presented:
        return False
    registered, presented = normalize_redirect_uri(registered), normalize_redirect_uri(presented)
    if registered == presented:
        return True
    if not is_loopback_redirect(registered) or not is_loopback_redirect(presented):
        return False
    reg, pre = split_uri(registered), split_uri(presented)
    if reg is None or pre is None:
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
