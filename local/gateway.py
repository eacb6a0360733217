"""A local stand-in for API Gateway (HTTP API, payload format 2.0, ``$default`` stage).

Each request is matched against ``functions.core.routes.ROUTES``, turned into the same
event API Gateway would send, and handed to the function's real Lambda handler, the code
that runs in AWS. Each function gets a small thread pool, like a few warm containers;
every worker thread owns an event loop for Mangum.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import re
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from functions.core.routes import FUNCTIONS, ROUTES, FunctionName, Route

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_PAYLOAD: Final = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
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
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def _new_loop() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())


def load_handler(function: FunctionName) -> LambdaHandler:
    module, _, attr = FUNCTIONS[function].handler.rpartition(".")
    handler: LambdaHandler = getattr(importlib.import_module(module), attr)
    return handler


class LambdaGateway:
    def __init__(self, handlers: Mapping[FunctionName, LambdaHandler], routes: tuple[Route, ...] = ROUTES) -> None:
        self._handlers = dict(handlers)
        self._routes = [(r, _compile(r.path)) for r in routes if r.function in self._handlers]
        self._pools = {
            name: ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"lambda-{name}", initializer=_new_loop)
            for name in self._handlers
        }

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, pattern in self._routes:
            m = pattern.match(path)
            if m and route.method == method:
                return route, m.groupdict()
        return None

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
        handler = self._handlers[route.function]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pools[route.function], handler, event, context)
        except Exception:  # noqa: BLE001 - an uncaught Lambda error is a 500 at API Gateway, as here
            await JSONResponse({"message": "Internal Server Error"}, status_code=500)(scope, receive, send)
            return
        await to_response(result)(scope, receive, send)


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
    is_text = not body or joined.get("content-type", "").startswith(_TEXT_TYPES)
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
