"""Browser plumbing of the authorization flow: the transaction cookie and redirects.

Kept apart from the flow so the flow is plain Python on dicts and strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode, urlsplit

from functions.core.platform.crypto import mac, mac_ok
from functions.core.platform.http import Answer

COOKIE_NAME_SECURE: Final = "__Host-mcpkit_txn"
COOKIE_NAME_LOCAL: Final = "mcpkit_txn"
COOKIE_MAX_AGE: Final = 600


class TxnCookie:
    """``<txn_id>.<base64url HMAC(cookie key, txn_id)>`` (docs/storage-schema.md, TXN#)."""

    def __init__(self, *, secure: bool) -> None:
        self.secure = secure
        # RFC 6265bis section 4.1.3.2: "__Host-" needs Secure, Path=/ and no Domain; plain-http
        # localhost cannot set Secure cookies, so local mode drops the prefix and Secure.
        self.name = COOKIE_NAME_SECURE if secure else COOKIE_NAME_LOCAL

    def _attributes(self, max_age: int) -> str:
        attrs = f"Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        return attrs + "; Secure" if self.secure else attrs

    def set(self, key: bytes, txn_id: str) -> str:
        return f"{self.name}={txn_id}.{mac(key, txn_id)}; {self._attributes(COOKIE_MAX_AGE)}"

    def clear(self) -> str:
        return f"{self.name}=; {self._attributes(0)}"

    @staticmethod
    def verify(key: bytes, value: str | None) -> str | None:
        """The transaction id when the cookie is present and its MAC is valid."""
        if not value or len(value) > 256:
            return None
        txn_id, sep, tag = value.rpartition(".")
        if not sep or not txn_id or not mac_ok(key, txn_id, tag):
            return None
        return txn_id


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """Add parameters, keeping any query the registered URI has (RFC 6749 section 3.1.2)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    base, _, fragment = uri.partition("#")  # registration forbids fragments; never keep one
    del fragment
    return f"{base}{'&' if urlsplit(base).query else ('' if base.endswith('?') else '?')}{query}"


def redirect(location: str, *, cookies: tuple[str, ...] = ()) -> Answer:
    """302 to ``location``, never cached, sending no Referer onwards; ``cookies`` are Set-Cookie values."""
    return Answer(
        302,
        "",
        {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        cookies,
    )
