"""Comparing RFC 8707 ``resource`` values after RFC 3986 normalisation.

Clients spell the MCP URL in many equivalent ways (``<B>/mcp/``, an upper-case scheme or
host, an explicit default port, percent-encoded unreserved characters). RFC 3986 section 6.2
says such spellings identify the same resource, so the authorization request, the token
request and the refresh request all compare ``resource`` through :func:`same_resource`;
anything that still differs after normalisation is another resource (``invalid_target``).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT: Final = re.compile(r"%(.{0,2})")
_HEX2: Final = re.compile(r"[0-9A-Fa-f]{2}")
# RFC 3986 section 2: unreserved, reserved (gen-delims, sub-delims) and "%". Anything else
# (space, tab, CR/LF, NUL and other controls, non-ASCII, "<>\"^`{|}\\") is not in a URI;
# urlsplit silently strips some of them, so they are refused before parsing.
_URI_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
MAX_RESOURCE: Final = 2048


def _percent_normalised(text: str) -> str | None:
    """RFC 3986 sections 6.2.2.1-6.2.2.2: upper-case hex, decode unreserved octets; None if malformed."""
    bad = False

    def fix(match: re.Match[str]) -> str:
        nonlocal bad
        digits = match.group(1)
        if not _HEX2.fullmatch(digits):
            bad = True
            return match.group(0)
        char = chr(int(digits, 16))
        return char if char in _UNRESERVED else "%" + digits.upper()

    fixed = _PCT.sub(fix, text)
    return None if bad else fixed


def _without_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 (used by section 6.2.2.3): resolve ``.`` and ``..`` segments."""
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/".join(output)


def normalise(uri: str) -> str | None:
    """The RFC 3986 section 6.2.2-6.2.3 normal form of an absolute http(s) URI, else None.

    Scheme and host lower-cased, the scheme's default port dropped, an empty path made
    ``/``, percent-encodings upper-cased and unreserved ones decoded, dot segments removed,
    and one trailing slash of a non-root path dropped (``<B>/mcp/`` is ``<B>/mcp``). A URI
    with a fragment, user information, an unparseable port or a character RFC 3986 section 2
    does not allow (whitespace, controls, non-ASCII...) is None (RFC 8707 section 2: a
    resource is an absolute URI without a fragment).
    """
    if not uri or len(uri) > MAX_RESOURCE or "#" in uri or not _URI_CHARS.fullmatch(uri):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _percent_normalised(parts.path)
    query = _percent_normalised(parts.query)
    if path is None or query is None:
        return None
    path = _without_dot_segments(path) or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def same_resource(presented: str, served: str) -> bool:
    """True when ``presented`` names ``served`` (RFC 8707 section 2, compared as RFC 3986 s6.2 says)."""
    canonical = normalise(served)
    return canonical is not None and normalise(presented) == canonical
