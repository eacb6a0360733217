"""A local stand-in for API Gateway (HTTP API, payload format 2.0, ``$default`` stage).

Each request is matched against ``functions.core.platform.routes.ROUTES``, turned into the same
event API Gateway would send, and handed to the function's real Lambda handler, the code
that runs in AWS. Every invocation runs on a thread of its own with its own event loop (for
Mangum), as every concurrent Lambda request gets a container of its own: a handler that never
returns holds its thread, never the others. As in API Gateway, no request waits longer than
the integration timeout: the caller then gets API Gateway's 503, and an asynchronous handler
(every Mangum app) is cancelled, which frees its thread.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import importlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from functions.core.platform.routes import ANY_METHOD, FUNCTIONS, ROUTES, FunctionName, Route

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_PAYLOAD: Final = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
# API Gateway HTTP API: the integration timeout is at most 30 s; past it the caller gets 503.
INTEGRATION_TIMEOUT_SECONDS: Final = 30.0
_TEXT_TYPES: Final = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


@dataclass
class FakeLambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _compile(path: str) -> re.Pattern[str]:
    """A route path as a regular expression: ``{name}`` is one segment, ``{name+}`` the rest
    of the path, possibly empty (API Gateway's greedy path variable)."""
    pattern = re.escape(path)
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.*)", pattern)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile("^" + pattern + "$")


def load_handler(function: FunctionName) -> LambdaHandler:
    module, _, attr = FUNCTIONS[function].handler.rpartition(".")
    handler: LambdaHandler = getattr(importlib.import_module(module), attr)
    return handler


class LambdaGateway:
    """The API Gateway stand-in, an ASGI app.

    ``timeout_seconds`` is the integration timeout (API Gateway HTTP API: 30 s); a test may
    use a short one.
    """

    def __init__(
        self,
        handlers: Mapping[FunctionName, LambdaHandler],
        routes: tuple[Route, ...] = ROUTES,
        *,
        timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self._handlers = dict(handlers)
        self._routes = [(r, _compile(r.path)) for r in routes if r.function in self._handlers]
        self._timeout = timeout_seconds
        self._in_flight: set[_Invocation] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Cancel every invocation still running (stack shutdown)."""
        with self._lock:
            in_flight = list(self._in_flight)
        for invocation in in_flight:
            invocation.cancel()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route API Gateway would pick: a route naming the method wins over ``ANY``."""
        fallback = None
        for route, pattern in self._routes:
            m = pattern.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict()
            if route.method == ANY_METHOD and fallback is None:
                fallback = route, m.groupdict()
        return fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        found = self.match(request.method, request.url.path)
        if found is None:
            # API Gateway answers unmatched routes itself, with this body.
            await JSONResponse({"message": "Not Found"}, status_code=404)(scope, receive, send)
            return
        route, params = found
        body = await request.body()
        if len(body) > MAX_PAYLOAD:
            await JSONResponse({"message": "Request Entity Too Large"}, status_code=413)(scope, receive, send)
            return
        event = build_event(
            method=request.method,
            path=request.url.path,
            raw_query=request.url.query,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
            route=route,
            params=params,
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        context = FakeLambdaContext(f"mcp-kit-{route.function}", event["requestContext"]["requestId"])
        invocation = _Invocation(self._handlers[route.function], event, context, route.function)
        with self._lock:
            self._in_flight.add(invocation)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(invocation.start()), self._timeout)
        except (TimeoutError, InvocationStopped):
            # API Gateway HTTP API past its integration timeout (Lambda would stop the
            # function there), or the stack stopping under the request.
            invocation.cancel()
            await JSONResponse({"message": "Service Unavailable"}, status_code=503)(scope, receive, send)
            return
        except Exception:  # noqa: BLE001 - an uncaught Lambda error is a 500 at API Gateway, as here
            await JSONResponse({"message": "Internal Server Error"}, status_code=500)(scope, receive, send)
            return
        finally:
            with self._lock:
                self._in_flight.discard(invocation)
        await to_response(result)(scope, receive, send)


class InvocationStopped(Exception):
    """The invocation was cancelled: past the timeout, or the stack is stopping."""


class _Invocation:
    """One Lambda invocation on a daemon thread of its own, with its own event loop.

    A daemon thread never keeps the process alive, so a handler stuck in blocking code
    cannot stop the stack from exiting; an asynchronous one is cancelled by :meth:`cancel`.
    """

    def __init__(self, handler: LambdaHandler, event: dict[str, Any], context: Any, name: str) -> None:
        self._handler = handler
        self._event = event
        self._context = context
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

    def start(self) -> concurrent.futures.Future[dict[str, Any]]:
        # Running from now on: a caller that stops waiting cannot cancel the future under
        # the thread that will complete it.
        self._future.set_running_or_notify_cancel()
        threading.Thread(target=self._run, name=f"lambda-{self._name}", daemon=True).start()
        return self._future

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._future.set_result(self._handler(self._event, self._context))
        except asyncio.CancelledError:
            self._future.set_exception(InvocationStopped(self._name))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as a Lambda runtime reports a crash
            self._future.set_exception(exc)
        finally:
            self._loop.close()

    def cancel(self) -> None:
        """Cancel the handler's asyncio tasks (a no-op once it has finished)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the invocation already ended
            self._loop.call_soon_threadsafe(_cancel_tasks, self._loop)


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def build_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    route: Route,
    params: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-2.0 event for one request."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in headers:
        key = key.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        # API Gateway joins repeated headers with commas.
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    is_text = not body or (joined.get("content-type", "").startswith(_TEXT_TYPES) and _is_utf8(body))
    now = time.time()
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": joined.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
        "body": body.decode() if is_text else base64.b64encode(body).decode(),
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = dict(params)
    return event


def _is_utf8(body: bytes) -> bool:
    """API Gateway passes a body as text only when it is text; anything else is base64."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def to_response(result: Mapping[str, Any]) -> Response:
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    response = Response(body, status_code=int(result.get("statusCode", 200)))
    del response.headers["content-length"]
    for key, value in (result.get("headers") or {}).items():
        response.headers.append(key, str(value))
    for key, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(key, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    response.headers["content-length"] = str(len(body))
    return response
