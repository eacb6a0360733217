"""The person's own sign-in to the connected-agents page: its state, its cookies, its session.

The page signs the person in through Cognito's managed login with the gateway client, as an
agent's authorization does, but for the kit itself: an OAuth 2.0 authorization-code request
with PKCE S256 (RFC 7636) and scope ``openid email`` only, whose ``state`` is
``account.<nonce>`` (transaction ids are base64url without dots, so an agent's state never
looks like it) and comes back through the same callback URL.

* The sign-in cookie binds ``state`` to this browser (RFC 6749 section 10.12); the sign-in
  item ``ACCOUNT#<sha256(nonce)>`` (artefacts table) makes it single use by a conditional
  update (pending -> used), and expires with it after ``SIGN_IN_LIFETIME_SECONDS``.
* The session cookie then carries ``<sub>.<expires_at>.<nonce>.<email>`` with an HMAC; nothing of it is
  stored. Its CSRF token is ``HMAC(csrf key, nonce)``, recomputed on each page and compared in
  constant time (a synchronizer token bound to the session, OWASP CSRF cheat sheet).

Both cookies are ``__Host-`` prefixed, HttpOnly, Secure and SameSite=Lax
(:func:`functions.authorization.web.set_cookie`); their keys are derived from the gateway
client secret like the transaction cookie's key (docs/storage-schema.md, "Derived, not stored").
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from functions.core.cognito.gateway_secret import SecretSource
from functions.core.platform.crypto import b64url, derive_key, mac, mac_ok, same_bytes, sha256_hex
from functions.core.platform.ddb import DynamoTable
from functions.core.platform.items import ItemKind, stored

ACCOUNT_STATE_PREFIX: Final = "account."
SIGN_IN_LIFETIME_SECONDS: Final = 600
# Short: the page is used for a few clicks; a person coming back later signs in again.
SESSION_LIFETIME_SECONDS: Final = 900
SIGN_IN_COOKIE: Final = ("__Host-mcpkit_account_signin", "mcpkit_account_signin")
SESSION_COOKIE: Final = ("__Host-mcpkit_account", "mcpkit_account")
SESSION_KEY_LABEL: Final = "mcp-kit/account-cookie/v1"
CSRF_KEY_LABEL: Final = "mcp-kit/account-csrf/v1"
ACCOUNT_PREFIX: Final = "ACCOUNT#"
MAX_COOKIE: Final = 512


def cookie_name(names: tuple[str, str], *, secure: bool) -> str:
    """The ``__Host-`` name, or the plain one for plain-http localhost (RFC 6265bis section 4.1.3.2)."""
    return names[0] if secure else names[1]


@dataclass(frozen=True)
class Session:
    """A signed-in person: Cognito ``sub``, expiry (epoch seconds), session nonce, email (may be empty)."""

    sub: str
    expires_at: int
    nonce: str
    email: str = ""


class AccountCookies:
    """Signs and checks the sign-in and session cookie values with keys derived from the gateway secret."""

    def __init__(self, secret: SecretSource) -> None:
        self._secret = secret

    def _key(self, label: str) -> bytes:
        return derive_key(self._secret.get(), label)

    def sign_in_value(self, nonce: str) -> str:
        """``<nonce>.<tag>`` for the sign-in cookie. ``DependencyError`` if the secret cannot be read."""
        return f"{nonce}.{mac(self._key(SESSION_KEY_LABEL), 'sign-in|' + nonce)}"

    def sign_in_nonce(self, value: str | None) -> str | None:
        """The nonce of a valid sign-in cookie, else None."""
        if not value or len(value) > MAX_COOKIE:
            return None
        nonce, sep, tag = value.rpartition(".")
        if not sep or not nonce or not mac_ok(self._key(SESSION_KEY_LABEL), "sign-in|" + nonce, tag):
            return None
        return nonce

    def session_value(self, session: Session) -> str:
        """``<sub>.<expires_at>.<nonce>.<base64url(email)>.<tag>`` for the session cookie."""
        email = b64url(session.email.encode())
        payload = f"{session.sub}.{session.expires_at}.{session.nonce}.{email}"
        return f"{payload}.{mac(self._key(SESSION_KEY_LABEL), 'session|' + payload)}"

    def session(self, value: str | None, now: float) -> Session | None:
        """The session of a valid, unexpired session cookie (``now`` in epoch seconds), else None."""
        if not value or len(value) > MAX_COOKIE:
            return None
        payload, sep, tag = value.rpartition(".")
        if not sep or not mac_ok(self._key(SESSION_KEY_LABEL), "session|" + payload, tag):
            return None
        parts = payload.rsplit(".", 3)
        if len(parts) != 4 or not parts[0] or not parts[1].isdigit() or not parts[2]:
            return None
        try:
            email = base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        session = Session(parts[0], int(parts[1]), parts[2], email)
        return session if now < session.expires_at else None

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of the session's forms (RFC 6749 section 10.12 style binding to the session)."""
        return mac(self._key(CSRF_KEY_LABEL), session.nonce)

    def csrf_ok(self, session: Session, presented: str) -> bool:
        """Whether a form's CSRF token is the session's, compared in constant time."""
        return mac_ok(self._key(CSRF_KEY_LABEL), session.nonce, presented)


def state_nonce(state: str) -> str | None:
    """The nonce of an account sign-in ``state`` (``account.<nonce>``), else None."""
    if not state.startswith(ACCOUNT_STATE_PREFIX):
        return None
    return state[len(ACCOUNT_STATE_PREFIX) :] or None


def state_matches(state: str, nonce: str) -> bool:
    """Whether Cognito echoed the state this browser's cookie binds (compared as bytes)."""
    return same_bytes(state, ACCOUNT_STATE_PREFIX + nonce)


@dataclass(frozen=True)
class AccountSignIn:
    """A pending sign-in to the connected-agents page: the SHA-256 (hex) of its state nonce, never the nonce."""

    nonce_hash: str = stored(key_only=True)
    status: str = stored()  # pending, then used
    expires_at: int = stored()  # epoch seconds, also the TTL


ACCOUNT_SIGN_INS: Final = ItemKind(
    AccountSignIn, kind="account_sign_in", key=lambda s: ACCOUNT_PREFIX + s.nonce_hash, ttl_of="expires_at"
)


class DynamoAccountSignIns(DynamoTable):
    """``ACCOUNT#<sha256(nonce)>`` items of the artefacts table: pending sign-ins, used once."""

    def create(self, nonce: str, expires_at: int) -> None:
        """Record a pending sign-in (``expires_at`` epoch seconds, also its TTL).

        ``ConditionFailed`` if the nonce exists (never, with 256-bit nonces); ``DependencyError`` (503).
        """
        sign_in = AccountSignIn(sha256_hex(nonce), "pending", expires_at)
        self._put_new(ACCOUNT_SIGN_INS.to_item(sign_in), "account sign-in put")

    def consume(self, nonce: str, now: int) -> bool:
        """Mark the sign-in used, once: False when it is unknown, used or expired (``now`` epoch s).

        One conditional update (pending -> used), so two callbacks racing with the same state
        cannot both succeed. ``DependencyError`` (503) when DynamoDB fails.
        """
        return self._update_if(
            ACCOUNT_PREFIX + sha256_hex(nonce),
            "account sign-in use",
            UpdateExpression="SET #s = :used",
            ConditionExpression="#s = :pending AND expires_at > :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":used": {"S": "used"}, ":pending": {"S": "pending"}, ":now": {"N": str(now)}},
        )
