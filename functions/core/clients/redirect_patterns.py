"""The operator's redirect URI patterns (REGISTRATION_REDIRECT_PATTERNS): grammar and matching.

A pattern is parsed into components and each URI component is compared on its own, never as
one glob over the whole string (RFC 9700 section 4.1.3, OAuth 2.1 section 2.3.1); the syntax is
in ``redirect_uri_allowed``. ``functions.core.clients.redirect_uris`` applies the patterns after
its fixed rules, which no pattern can lift; the settings and the CDK stack refuse a malformed
pattern with ``parse_redirect_pattern`` at cold start and at synth.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit

from functions.core.oauth.uris import DANGEROUS_SCHEMES, LOOPBACK_HOSTS, PRIVATE_USE_SCHEME, URI_FORBIDDEN, split_uri


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
        return self.scheme not in ("https", "http") and not PRIVATE_USE_SCHEME.match(self.scheme)


@dataclass(frozen=True)
class RedirectPolicy:
    """The operator's patterns parsed once: what they admit, and whether they narrow the standard forms."""

    patterns: tuple[RedirectPattern, ...]
    narrowing: bool  # some pattern (or a malformed one: fail closed) restricts the standard forms

    @classmethod
    def parse(cls, texts: Sequence[str]) -> RedirectPolicy:
        """Parse REGISTRATION_REDIRECT_PATTERNS; a malformed pattern admits nothing and narrows all (fail closed)."""
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
        """Whether some pattern admits the split URI (never one with userinfo)."""
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
    return RedirectPolicy.parse(patterns).matches(uri)
