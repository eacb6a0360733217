"""Small, audited crypto helpers shared by the facade functions.

* Secrets are generated with ``secrets`` (CSPRNG), 256 bits unless stated.
* Stored secrets are SHA-256 hex digests; presented values are hashed and compared with
  ``hmac.compare_digest`` (constant time) where a stored hash is compared.
* PKCE S256 (RFC 7636 section 4.6): ``BASE64URL(SHA256(ASCII(verifier))) == challenge``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

# RFC 7636 section 4.1: 43..128 characters of [A-Z a-z 0-9 - . _ ~].
PKCE_VERIFIER: Final = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
# An S256 challenge is base64url(sha256) without padding: exactly 43 characters.
PKCE_CHALLENGE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret; 32 bytes = 256 bits (codes, tokens, transaction ids)."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same_hash(presented: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against its stored SHA-256 hex digest."""
    if not stored_hash:
        return False
    return hmac.compare_digest(sha256_hex(presented), stored_hash)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_matches(verifier: str, challenge: str) -> bool:
    if not PKCE_VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def derive_key(root_secret: str, label: str) -> bytes:
    """A purpose-bound key: HMAC-SHA256(root secret, label). Never stored."""
    return hmac.new(root_secret.encode(), label.encode(), hashlib.sha256).digest()


def mac(key: bytes, message: str) -> str:
    return b64url(hmac.new(key, message.encode(), hashlib.sha256).digest())


def mac_ok(key: bytes, message: str, tag: str) -> bool:
    return hmac.compare_digest(mac(key, message), tag)
