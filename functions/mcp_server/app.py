"""The ``/mcp`` endpoint as an ASGI app: auth gate, step-up check, then the MCP SDK.

Why a fresh ``StreamableHTTPSessionManager`` per request: the SDK's manager can enter
``run()`` only once per instance, and under Mangum every Lambda invocation is a separate
event-loop run, so a manager bound to one app lifespan breaks on the second warm call
(NOTES.md). A stateless JSON-response manager holds nothing between requests, so making
one per request is cheap (a task group and a transport) and correct everywhere: Lambda,
uvicorn, tests. The MCPServer itself (tools, schemas) is built once per container.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from functions.core.platform.http import Answer
from functions.core.platform.metrics import count
from functions.core.platform.routes import MCP_PATH
from functions.mcp_server import outage, transport
from functions.mcp_server import principal as principal_ctx
from functions.mcp_server.auth import Denied, McpAuthenticator, step_up_scopes
from functions.mcp_server.principal import Principal
from functions.mcp_server.registry import ToolRegistry
from functions.mcp_server.server import ScopedMCPServer, tool_called

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# API Gateway caps payloads at 10 MB; MCP requests are small. Read at most this much
# before deciding on scopes, so a huge body cannot exhaust the function's memory.
MAX_BODY_BYTES: Final = 1024 * 1024


# The MCP URL in both spellings: clients configured with "<B>/mcp/" are served as "<B>/mcp".
MCP_PATHS: Final = frozenset({MCP_PATH, MCP_PATH + "/"})

# Fetch spec (CORS): what a browser client may send and read. The challenge headers must be
# exposed, or a browser-based client cannot start the OAuth flow from a 401 or 403.
CORS_ALLOW_HEADERS: Final = (
    "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name, last-event-id"
)
CORS_EXPOSE_HEADERS: Final = "www-authenticate, mcp-session-id, mcp-protocol-version"
# MCP transport 2026-07-28 (SEP-2243): a tool argument annotated ``x-mcp-header`` also travels as
# an ``Mcp-Param-<name>`` header, whose names only the tool's schema knows; a preflight may ask for
# any of them. The name part is an RFC 9110 token (section 5.6.2).
_MCP_PARAM_HEADER: Final = re.compile(r"mcp-param-[!#$%&'*+.^_`|~0-9a-z-]+")


def cors_allow_headers(requested: str | None) -> str:
    """``Access-Control-Allow-Headers`` of a preflight: the fixed list, plus the ``Mcp-Param-*``
    names its ``Access-Control-Request-Headers`` (``requested``, None when absent) asks for."""
    names = dict.fromkeys(name.strip().lower() for name in (requested or "").split(","))
    return ", ".join([CORS_ALLOW_HEADERS, *(name for name in names if _MCP_PARAM_HEADER.fullmatch(name))])


def _with_cors(send: Send, origin: str) -> Send:
    """Add CORS response headers for an allowed ``origin`` to whatever the app answers."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", CORS_EXPOSE_HEADERS.encode()),
                (b"vary", b"Origin"),
            ]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _tool_calls(payload: Any) -> list[str]:
    """Names of tools a JSON-RPC payload calls (a single message or a legacy batch)."""
    messages = payload if isinstance(payload, list) else [payload]
    names = []
    for msg in messages:
        if isinstance(msg, dict) and msg.get("method") == "tools/call":
            params = msg.get("params")
            if isinstance(params, dict) and isinstance(params.get("name"), str):
                names.append(params["name"])
    return names


class McpEndpoint:
    """The ``/mcp`` ASGI app: CORS, method gate, bearer check, step-up, then the SDK (per request)."""

    def __init__(
        self,
        *,
        server: ScopedMCPServer,
        registry: ToolRegistry,
        authenticator: McpAuthenticator,
        security: TransportSecuritySettings,
    ) -> None:
        self._server = server
        self._registry = registry
        self._auth = authenticator
        self._security = security
        self._cors_origins = frozenset(security.allowed_origins)
        # The low-level server behind MCPServer, through the SDK's public surface:
        # streamable_http_app() creates a session manager, whose ``app`` it is.
        server.streamable_http_app(json_response=True, stateless_http=True, transport_security=security)
        self._lowlevel = server.session_manager.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] not in MCP_PATHS:
            await JSONResponse({"message": "Not Found"}, status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        origin = request.headers.get("origin")
        cors = origin is not None and origin in self._cors_origins
        if scope["method"] == "OPTIONS":
            # A preflight carries no credentials: answer it before authentication. Foreign
            # origins get no CORS headers, so the browser refuses the real request.
            headers = {"Vary": "Origin, Access-Control-Request-Headers", "Cache-Control": "no-store"}
            if cors:
                headers |= {
                    "Access-Control-Allow-Origin": origin or "",
                    "Access-Control-Allow-Methods": transport.ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": cors_allow_headers(
                        request.headers.get("access-control-request-headers")
                    ),
                    "Access-Control-Max-Age": "86400",
                }
            await Response(status_code=204, headers=headers)(scope, receive, send)
            return
        if cors:
            send = _with_cors(send, origin or "")
        if scope["method"] != "POST":
            # Before the SDK (whose stateless GET opens a stream that never ends) and before
            # authentication: the answer is the same for everyone and costs nothing.
            await transport.method_not_allowed(scope["method"])(scope, receive, send)
            return
        outcome = self._auth.authenticate(request.headers.get("authorization"))
        if isinstance(outcome, Denied):
            await _response(outcome.answer)(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await JSONResponse({"error": "request body too large"}, status_code=413)(scope, receive, send)
            return
        try:
            payload = transport.parse_body(body)
        except transport.Unparseable:
            await transport.parse_error()(scope, receive, send)
            return
        version = request.headers.get(transport.PROTOCOL_VERSION_HEADER)
        if version is not None and version not in transport.SERVED_PROTOCOL_VERSIONS:
            await transport.unsupported_version(version)(scope, receive, send)
            return
        denied = self._step_up(payload, outcome, version)
        if denied is not None:
            # Step-up before the SDK runs anything (MCP authorization spec, "Step-Up
            # Authorization Flow").
            await _response(denied)(scope, receive, send)
            return
        receive = _replay(body)
        framing = transport.framing(request.headers.get("accept"))
        if framing is not None:
            # The SDK always answers in JSON mode (one response, then done); an SSE-only
            # client gets that response reframed as one event.
            scope = {**scope, "headers": transport.with_accept(scope["headers"], transport.JSON_TYPE.encode())}
            if framing == "sse":
                send = transport.as_sse(send)

        # Last, so that it sees the SDK's answer first: a tool's outage becomes 503.
        send, watch = outage.watching(send)
        token = principal_ctx.bind(outcome)
        try:
            manager = self._new_session_manager()
            async with manager.run():
                await manager.handle_request(scope, receive, send)
        finally:
            principal_ctx.unbind(token)
            outage.close(watch)

    def _new_session_manager(self) -> StreamableHTTPSessionManager:
        """A new stateless JSON-response session manager for one request (see the module docstring)."""
        return StreamableHTTPSessionManager(
            app=self._lowlevel, json_response=True, stateless=True, security_settings=self._security
        )

    def _step_up(self, payload: Any, principal: Principal, version: str | None) -> Answer | None:
        """403 ``insufficient_scope`` if a tool called in ``payload`` needs scopes ``principal`` lacks.

        Each refused call is a ``tool.called`` event (outcome ``denied``) and the answer one
        ``StepUpChallenges`` metric.
        """
        held = principal.scopes
        refused: list[str] = []
        needed: set[str] = set()
        for name in _tool_calls(payload):
            required = self._registry.required_scopes(name)
            if required is not None and not required <= held:
                refused.append(name)
                needed |= required
        if not refused:
            return None
        for name in refused:
            tool_called(principal, name, known=True, outcome="denied", reason="insufficient_scope", duration_ms=None)
        count("StepUpChallenges")
        return self._auth.insufficient_scope(step_up_scopes(frozenset(needed), held, version), refused)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: every request is self-contained."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
