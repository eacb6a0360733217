"""HTTP-level rules of the MCP Streamable HTTP transport that the kit decides before the SDK.

MCP transport spec (2025-06-18 onwards), "Streamable HTTP":
* "Listening for Messages from the Server": a server that offers no SSE stream answers
  ``GET`` with 405; the kit is a stateless JSON server, so every method but POST (and the
  CORS preflight) gets 405 with ``Allow`` (RFC 9110 section 15.5.6) at once.
* "Sending Messages to the Server": the response to a POST is either one JSON object or an
  SSE stream; a client that accepts only ``text/event-stream`` gets the one JSON-RPC
  response as a single SSE ``message`` event, and the stream ends.
* "Protocol Version Header": an unsupported ``MCP-Protocol-Version`` gets 400.
A body that is not JSON is a JSON-RPC parse error (JSON-RPC 2.0 section 5.1, -32700), HTTP 400.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal

from mcp_types.jsonrpc import PARSE_ERROR, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.responses import Response

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

ALLOWED_METHODS: Final = "POST, OPTIONS"
# Every revision the SDK serves, oldest first: the handshake era and the stateless era.
SERVED_PROTOCOL_VERSIONS: Final = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
JSON_TYPE: Final = "application/json"
SSE_TYPE: Final = "text/event-stream"

Framing = Literal["json", "sse"]


class Unparseable(ValueError):
    """The request body is not one JSON value."""


def rpc_error(
    status: int, code: int, message: str, *, data: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """A JSON-RPC error object with ``id: null`` (JSON-RPC 2.0 section 5) as an HTTP answer."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error})
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def method_not_allowed(method: str) -> Response:
    """405 for every method but POST and OPTIONS (see the module docstring)."""
    return rpc_error(
        405,
        -32000,
        f"Method Not Allowed: {method}; this stateless server takes JSON-RPC over POST and offers no SSE stream",
        headers={"Allow": ALLOWED_METHODS},
    )


def parse_body(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`Unparseable` for anything that is not one.

    ``RecursionError`` (deep nesting) and bare ``ValueError`` (oversized integer literals,
    invalid UTF-8) are parse errors too, never a 500.
    """
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Unparseable(type(exc).__name__) from None


def parse_error() -> Response:
    """400 with the JSON-RPC parse error (-32700, JSON-RPC 2.0 section 5.1) for a body that is not JSON."""
    return rpc_error(400, PARSE_ERROR, "Parse error: the body is not a JSON value")


def unsupported_version(requested: str) -> Response:
    """400 naming the served revisions (the SDK's -32022 error and its data shape)."""
    served = list(SERVED_PROTOCOL_VERSIONS)
    return rpc_error(
        400,
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported MCP-Protocol-Version {requested!r}; this server supports {', '.join(served)}",
        data={"supported": served, "requested": requested},
    )


def framing(accept: str | None) -> Framing | None:
    """How to frame the response for this ``Accept`` header; None if neither JSON nor SSE.

    Liberal (RFC 9110 section 12.5.1): no ``Accept`` means anything; wildcards count.
    """
    if accept is None or not accept.strip():
        return "json"
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if types & {JSON_TYPE, "application/*", "*/*"}:
        return "json"
    if types & {SSE_TYPE, "text/*"}:
        return "sse"
    return None


def with_accept(headers: list[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    """ASGI headers with ``Accept`` replaced by ``value``."""
    return [(k, v) for k, v in headers if k.lower() != b"accept"] + [(b"accept", value)]


def as_sse(send: Send) -> Send:
    """Reframe a successful JSON response as one SSE ``message`` event (WHATWG SSE 9.2.5).

    Other answers (errors, 202 for notifications) pass unchanged. The SDK runs in JSON mode
    under this wrapper, so the stream always ends after the one response.
    """
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] == 200 and content_type.startswith(JSON_TYPE.encode()):
                start = message
                return
        elif message["type"] == "http.response.body" and start is not None:
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            payload = b"".join(chunks)
            event = b"event: message\r\n" + b"".join(b"data: " + line + b"\r\n" for line in payload.splitlines())
            event += b"\r\n"
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")
            ]
            headers += [
                (b"content-type", SSE_TYPE.encode()),
                (b"cache-control", b"no-cache, no-transform"),
                (b"content-length", str(len(event)).encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return
        await send(message)

    return wrapped
