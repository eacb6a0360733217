"""Redirect URIs: the fixed safety rules, the operator's patterns, and the one comparison.

* ``check_redirect_uri`` validates a URI at registration (DCR and Client ID Metadata
  Documents) and returns it in normal form (``normalize_redirect_uri``);
* the operator's REGISTRATION_REDIRECT_PATTERNS narrow or widen what registers (their grammar
  and matching: ``functions.core.clients.redirect_patterns``);
* ``redirect_uri_matches`` is the one comparison the authorization and token functions use:
  exact string match (OAuth 2.1 section 2.3.1) after the one RFC 3986 section 6.2.3
  normalisation that changes nothing but spelling (an empty http(s) path is "/"), except that
  a loopback http redirect URI matches on any port (RFC 8252 section 7.3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import SplitResult

from functions.core.clients.redirect_patterns import RedirectPolicy
from functions.core.oauth.uris import (
    DANGEROUS_SCHEMES,
    LOOPBACK_HOSTS,
    MAX_URI_LENGTH,
    PRIVATE_USE_SCHEME,
    URI_FORBIDDEN,
    split_uri,
)
from functions.core.platform.errors import OAuthError

# RFC 3986 section 6.2.3: for these schemes an empty path is equivalent to "/".
_EMPTY_PATH_IS_SLASH: Final = frozenset({"http", "https"})
# (presented redirect URI, registered or approved URIs) -> match: ``redirect_uri_registered``.
RedirectMatcher = Callable[[str, Sequence[str]], bool]


def _redirect_error(description: str) -> OAuthError:
    return OAuthError("invalid_redirect_uri", description)


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
    return parts.scheme in ("https", "http") or bool(PRIVATE_USE_SCHEME.match(parts.scheme))


def check_redirect_uri(uri: object, patterns: Sequence[str] = ()) -> str:
    """Validate one redirect URI; return it normalised, or raise ``invalid_redirect_uri``.

    The error names the rule, never echoes the value (it is attacker-supplied text).
    ``patterns`` are the operator's REGISTRATION_REDIRECT_PATTERNS (``redirect_patterns``).
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
    policy = RedirectPolicy.parse(patterns)
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


def is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is a plain http redirect to a loopback host (RFC 8252 section 7.3)."""
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


def redirect_uri_registered(redirect_uri: str, registered: Sequence[str]) -> bool:
    """Whether a presented ``redirect_uri`` is one of a client's ``registered`` URIs.

    The one comparison of the authorization request (RFC 6749 section 4.1.1, OAuth 2.1 section
    2.3.1) and of remembered consent: ``redirect_uri_matches`` against each registered URI.
    """
    return any(redirect_uri_matches(candidate, redirect_uri) for candidate in registered)
