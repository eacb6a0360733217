"""Client authentication at the token endpoint, shared by ``/token`` and ``/revoke``.

RFC 6749 section 2.3 (and RFC 7009 section 2.1, which reuses it): a client authenticates
exactly as it registered (``token_endpoint_auth_method``, RFC 7591 section 2), with one
method per request. ``AUTH_METHODS`` is what ``authenticate_client`` accepts, and so what
the RFC 8414 metadata document advertises for both endpoints.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final, get_args
from urllib.parse import unquote_plus, urlsplit

from functions.core.clients.cimd_fetch import CimdUnavailable
from functions.core.clients.records import MAX_CLIENT_ID, AuthMethod, ClientRecord, ClientResolver
from functions.core.platform.crypto import same_hash
from functions.core.platform.errors import RETRY_AFTER_SECONDS, TokenError, description_text
from functions.core.platform.metrics import count

# RFC 8414 section 2: token_endpoint_auth_methods_supported / revocation_endpoint_auth_methods_supported.
AUTH_METHODS: Final[tuple[AuthMethod, ...]] = get_args(AuthMethod)


def invalid_client(description: str) -> TokenError:
    """401 ``invalid_client`` with ``WWW-Authenticate`` naming the scheme the client may use.

    RFC 6749 section 5.2: a failed client authentication through the Authorization header
    MUST be 401 with WWW-Authenticate; the kit answers every one the same way.
    """
    return TokenError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="token"'})


def client_document_unavailable(client_id: str) -> TokenError:
    """503 ``temporarily_unavailable`` with ``Retry-After`` (seconds): the metadata document at
    ``client_id`` (an https URL) could not be fetched for now (``CimdUnavailable``); the description
    names its host, in the characters RFC 6749 section 5.2 allows there.

    RFC 6749 registers ``temporarily_unavailable`` for the authorization endpoint's error response
    (section 4.1.2.1) only; section 5.2 has no code for "cannot tell now", and ``invalid_client``
    would be false: MCP clients discard their stored tokens and registration on it, so a blip at
    the client's own document host would force a new sign-in. A 503 with ``Retry-After`` (RFC 9110
    section 15.6.4) in the section 5.2 JSON shape says "retry": nothing was read or spent yet.
    Counts ``ClientDocumentUnavailable``, not ``DependencyUnavailable``: the host is the client's.
    """
    count("ClientDocumentUnavailable")
    host = description_text(urlsplit(client_id).hostname or "")
    return TokenError(
        "temporarily_unavailable",
        f"the client's metadata document (its client_id URL on {host}) cannot be fetched now; retry later",
        503,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _parse_basic(value: str) -> tuple[str, str]:
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client("only HTTP Basic client authentication is accepted in the Authorization header")
    try:
        # RFC 7617 section 2 / RFC 6749 section 2.3.1: base64 of "id:secret". b64decode raises
        # ValueError on non-ASCII input, binascii.Error (a ValueError) on bad base64, and
        # .decode() UnicodeDecodeError (a ValueError) on non-UTF-8: all are invalid_client.
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except ValueError:
        raise invalid_client("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic credentials")
    # RFC 6749 section 2.3.1: id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(resolver: ClientResolver, authorization: str, form: Mapping[str, str]) -> ClientRecord:
    """The client that authenticated this token-endpoint request, as it registered.

    ``authorization`` is the request's Authorization header ("" when absent), ``form`` its
    form parameters. Raises ``TokenError`` ``invalid_client`` (401) when the client is
    unknown, uses another method than its registered one, or the secret does not match
    (compared as SHA-256 in constant time), and ``invalid_request`` when two methods are
    used at once (RFC 6749 section 2.3), ``temporarily_unavailable`` (503) when the client's
    metadata document cannot be fetched for now. ``DependencyError`` when the resolver's store fails.
    Nothing is read or spent before the client is known, so every refusal here leaves codes and
    refresh tokens as they were.
    """
    basic = _parse_basic(authorization) if authorization else None
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None and form_secret is not None:
        # RFC 6749 section 2.3: a client MUST NOT use more than one authentication method.
        raise TokenError("invalid_request", "use one client authentication method")
    if basic is not None and form_id is not None and form_id != basic[0]:
        raise invalid_client("client_id does not match the credentials")
    client_id = basic[0] if basic is not None else form_id
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        raise invalid_client("client authentication is required")
    try:
        client = resolver.resolve(client_id)
    except CimdUnavailable:
        raise client_document_unavailable(client_id) from None
    if client is None:
        raise invalid_client("unknown client")
    secret = basic[1] if basic is not None else (form_secret or "")
    used: AuthMethod = "client_secret_basic" if basic else "client_secret_post" if form_secret is not None else "none"
    if client.token_endpoint_auth_method == "none" and not secret:
        # RFC 6749 section 2.3.1: a client MAY omit an empty secret, so an empty one is none at
        # all: a public client sending "Basic <id>:" (Go's x/oauth2 auto-detection tries that
        # first) or client_secret="" authenticates as the none it registered, proving nothing
        # more. A confidential client's empty secret still fails the comparison below.
        used = "none"
    if used != client.token_endpoint_auth_method:
        raise invalid_client(f"the client must authenticate with {client.token_endpoint_auth_method}")
    # Constant-time comparison against the stored SHA-256 (docs/storage-schema.md).
    if used != "none" and not same_hash(secret, client.client_secret_hash):
        raise invalid_client("client authentication failed")
    return client
