"""URI rules shared by redirect URIs, redirect patterns, CIMD URLs and the kit's own settings.

One home for the loopback host names (where plain http is allowed: RFC 8252 sections 7.3 and
8.3, OAuth 2.1 section 1.5), the schemes no redirect may use, the characters no URI may hold
(RFC 3986 section 2), and the one ``urlsplit`` that also checks the port.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, urlsplit

MAX_URI_LENGTH: Final = 2000
# RFC 8252 section 7.3: the IPv4 and IPv6 loopback literals; section 8.3 prefers them to
# "localhost", which the kit still accepts because clients in the field use it (Claude Code).
LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"localhost", "127.0.0.1", "::1"})
# Schemes that execute or read content instead of navigating back to an app.
DANGEROUS_SCHEMES: Final[frozenset[str]] = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
# RFC 8252 section 7.1: a private-use scheme in reverse domain name form, e.g. com.example.app.
PRIVATE_USE_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
# RFC 3986 section 2: whitespace, controls and these delimiters never appear in a URI.
URI_FORBIDDEN: Final = re.compile(r"[\x00-\x20\x7f\\<>\"{}|^`]")


def split_uri(uri: str) -> SplitResult | None:
    """``urlsplit`` with the port parsed; None when the URI (or its port) is malformed."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    return parts
