"""HTTP plumbing of the token function: form parsing, client authentication, JSON answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

from functions.core.clients.records import MAX_CLIENT_ID, AuthMethod, ClientRecord, ClientResolver
from functions.core.platform import http
from functions.core.platform.crypto import same_hash
from functions.core.platform.errors import OAuthError, unavailable_answer

MAX_FORM_BYTES: Final = 16 * 1024
# RFC 6749 section 5.1: token answers must not be cached; on every answer, errors included.
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Browser-based MCP clients call /token and /revoke cross-origin. No cookies are involved
# (credentials travel in the body or an explicit Authorization header), so "*" is safe.
CORS: Final = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT: Final = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "86400",
}


def form_params(event: Mapping[str, Any]) -> dict[str, str]:
    """The form body; ``invalid_request`` when it is not a form or a parameter repeats (RFC 6749 s3.2)."""
    try:
        return http.form_params(event, MAX_FORM_BYTES)
    except http.RequestRejected as exc:
        raise OAuthError("invalid_request", str(exc)) from None


def json_answer(status: int, body: Mapping[str, Any] | None, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    headers = {**NO_STORE, **CORS, **(extra or {})}
    if body is None:
        return {"statusCode": status, "headers": headers, "body": ""}
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **headers}, "body": json.dumps(body)}


def error_answer(err: OAuthError) -> dict[str, Any]:
    return json_answer(err.status, err.body(), err.headers)


def unavailable() -> dict[str, Any]:
    answer = unavailable_answer()
    return {"statusCode": answer.status, "headers": {**answer.headers, **NO_STORE, **CORS}, "body": answer.body}


def _invalid_client(description: str) -> OAuthError:
    # RFC 6749 section 5.2: 401 with WWW-Authenticate naming the scheme the client may use.
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="token"'})


def _parse_basic(value: str) -> tuple[str, str]:
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("only HTTP Basic client authentication is accepted in the Authorization header")
    try:
        # RFC 7617 section 2 / RFC 6749 section 2.3.1: base64 of "id:secret". b64decode raises
        # ValueError on non-ASCII input, binascii.Error (a ValueError) on bad base64, and
        # .decode() UnicodeDecodeError (a ValueError) on non-UTF-8: all are invalid_client.
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except ValueError:
        raise _invalid_client("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client("malformed Basic credentials")
    # RFC 6749 section 2.3.1: id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(resolver: ClientResolver, authorization: str, form: Mapping[str, str]) -> ClientRecord:
    """Client authentication exactly as registered (RFC 6749 section 2.3, RFC 7591 section 2)."""
    basic = _parse_basic(authorization) if authorization else None
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None and form_secret is not None:
        # RFC 6749 section 2.3: a client MUST NOT use more than one authentication method.
        raise OAuthError("invalid_request", "use one client authentication method")
    if basic is not None and form_id is not None and form_id != basic[0]:
        raise _invalid_client("client_id does not match the credentials")
    client_id = basic[0] if basic is not None else form_id
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        raise _invalid_client("client authentication is required")
    client = resolver.resolve(client_id)
    if client is None:
        raise _invalid_client("unknown client")
    used: AuthMethod = "client_secret_basic" if basic else "client_secret_post" if form_secret is not None else "none"
    if used != client.token_endpoint_auth_method:
        raise _invalid_client(f"the client must authenticate with {client.token_endpoint_auth_method}")
    if used != "none":
        secret = basic[1] if basic is not None else (form_secret or "")
        # Constant-time comparison against the stored SHA-256 (docs/storage-schema.md).
        if not same_hash(secret, client.client_secret_hash):
            raise _invalid_client("client authentication failed")
    return client
