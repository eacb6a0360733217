"""Small, audited crypto helpers shared by the facade functions.

* Secrets are generated with ``secrets`` (CSPRNG), 256 bits unless stated.
* Stored secrets are SHA-256 hex digests; presented values are hashed and compared with
  ``hmac.compare_digest`` (constant time) where a stored hash is compared.
* PKCE S256 (RFC 7636 section 4.6): ``BASE64URL(SHA256(ASCII(verifier))) == challenge``.
* Every value is turned into bytes with ``_utf8`` before hashing or comparing: any Python
  ``str`` (non-ASCII, lone surrogates from JSON ``"\\ud800"``) maps to bytes without
  raising, so hostile input is a mismatch, never an exception (never a 500).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

# RFC 7636 section 4.1: 43..128 characters of [A-Z a-z 0-9 - . _ ~]. Anchored with \Z, not $:
# "$" also matches before a final newline, which neither alphabet has.
PKCE_VERIFIER: Final = re.compile(r"^[A-Za-z0-9._~-]{43,128}\Z")
# An S256 challenge is base64url(sha256) without padding: exactly 43 characters (RFC 7636 section 4.2).
PKCE_CHALLENGE: Final = re.compile(r"^[A-Za-z0-9_-]{43}\Z")


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret; 32 bytes = 256 bits (codes, tokens, transaction ids)."""
    return secrets.token_urlsafe(nbytes)


def _utf8(value: str) -> bytes:
    """UTF-8 bytes of any ``str``; "surrogatepass" cannot raise (lone surrogates included).

    ``hmac.compare_digest`` raises ``TypeError`` on non-ASCII ``str``, so every constant-time
    comparison here is done on bytes.
    """
    return value.encode("utf-8", "surrogatepass")


def same_bytes(a: str, b: str) -> bool:
    """Constant-time equality of two strings of any content (compared as UTF-8 bytes)."""
    return hmac.compare_digest(_utf8(a), _utf8(b))


def sha256_hex(value: str) -> str:
    """SHA-256 of ``value``'s UTF-8 bytes as 64 lower-case hex digits: how every secret is stored."""
    return hashlib.sha256(_utf8(value)).hexdigest()


def same_hash(presented: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against its stored SHA-256 hex digest."""
    if not stored_hash:
        return False
    return same_bytes(sha256_hex(presented), stored_hash)


def b64url(raw: bytes) -> str:
    """Base64url of ``raw`` without ``=`` padding (RFC 7636 appendix A, RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of an ASCII ``verifier`` (RFC 7636 section 4.2); ``UnicodeEncodeError`` otherwise."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_matches(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` is well-formed and its S256 equals ``challenge`` (RFC 7636 section 4.6), in constant time.

    Never raises: a verifier outside the RFC 7636 section 4.1 alphabet or length is a mismatch.
    """
    # RFC 7636 section 4.1: a verifier is ASCII unreserved characters; anything else fails
    # here, before s256's ASCII encoding could raise.
    if not PKCE_VERIFIER.match(verifier):
        return False
    return same_bytes(s256(verifier), challenge)


def derive_key(root_secret: str, label: str) -> bytes:
    """A purpose-bound key: HMAC-SHA256(root secret, label). Never stored."""
    return hmac.new(_utf8(root_secret), _utf8(label), hashlib.sha256).digest()


def mac(key: bytes, message: str) -> str:
    """Base64url HMAC-SHA256 of ``message`` under ``key`` (43 characters): the tag of a signed cookie value."""
    return b64url(hmac.new(key, _utf8(message), hashlib.sha256).digest())


def mac_ok(key: bytes, message: str, tag: str) -> bool:
    """Whether ``tag`` is ``mac(key, message)``, compared in constant time; any other ``tag`` is False."""
    # A cookie is attacker-controlled: compare bytes so a non-ASCII tag is a mismatch.
    return same_bytes(mac(key, message), tag)
