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


def set_cookie(name: str, value: str, max_age: int, *, secure: bool) -> str:
    """A ``Set-Cookie`` value: host-only, Path=/, HttpOnly, SameSite=Lax, Secure unless local.

    ``max_age`` in seconds (0 clears the cookie). SameSite=Lax, not Strict: the cookie must come
    back on the top-level redirect from Cognito's managed login, a cross-site navigation
    (RFC 6265bis section 5.4.7.1); cross-site POSTs never carry it.
    """
    attrs = f"Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return f"{name}={value}; {attrs}; Secure" if secure else f"{name}={value}; {attrs}"


class TxnCookie:
    """``<txn_id>.<base64url HMAC(cookie key, txn_id)>`` (docs/storage-schema.md, TXN#)."""

    def __init__(self, *, secure: bool) -> None:
        self.secure = secure
        # RFC 6265bis section 4.1.3.2: "__Host-" needs Secure, Path=/ and no Domain; plain-http
        # localhost cannot set Secure cookies, so local mode drops the prefix and Secure.
        self.name = COOKIE_NAME_SECURE if secure else COOKIE_NAME_LOCAL

    def set(self, key: bytes, txn_id: str) -> str:
        """The ``Set-Cookie`` value binding this browser to ``txn_id`` for ``COOKIE_MAX_AGE`` seconds."""
        return set_cookie(self.name, f"{txn_id}.{mac(key, txn_id)}", COOKIE_MAX_AGE, secure=self.secure)

    def clear(self) -> str:
        """The ``Set-Cookie`` value that deletes the cookie (``Max-Age=0``) once a sign-in ends."""
        return set_cookie(self.name, "", 0, secure=self.secure)

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


def redirect(location: str, *, cookies: tuple[str, ...] = (), status: int = 302) -> Answer:
    """A redirect (302, or 303 after a POST: RFC 9110 section 15.4.4) that is never cached nor leaks a referrer."""
    return Answer(
        status,
        "",
        {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        cookies,
    )
