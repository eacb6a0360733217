"""The local API Gateway stand-in: routing, bounded invocations, bodies as API Gateway passes them."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from functions.core.platform.routes import ROUTES
from local.gateway import LambdaGateway, build_event

pytestmark = pytest.mark.anyio
# Guards against a hang only; no assertion here is about how long anything took.
HANG_GUARD_SECONDS = 20
SHORT_BOUND = 0.2  # the gateway's integration timeout in these tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = json.dumps({"method": event["requestContext"]["http"]["method"], "path": event["rawPath"]})
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}


class Blocking:
    """A Lambda handler whose GETs block until the test releases them; other methods answer."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.left = threading.Semaphore(0)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["requestContext"]["http"]["method"] != "GET":
            return _ok(event, context)
        self.entered.release()
        try:
            self.release.wait()
        finally:
            self.left.release()
        return _ok(event, context)


@pytest.fixture
def blocking() -> Iterator[Blocking]:
    handler = Blocking()
    yield handler
    handler.release.set()  # never leave a thread behind


async def _send(gateway: LambdaGateway, method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            return await client.request(method, path, **kw)


async def _entered(sem: threading.Semaphore) -> None:
    acquired = await anyio.to_thread.run_sync(sem.acquire, True, HANG_GUARD_SECONDS)
    assert acquired, "handler never reached"


async def test_a_stuck_invocation_gets_api_gateways_503_at_the_bound(blocking: Blocking) -> None:
    gateway = LambdaGateway({"mcp_server": blocking}, timeout_seconds=SHORT_BOUND)
    resp = await _send(gateway, "GET", "/mcp")
    assert resp.status_code == 503
    assert resp.json() == {"message": "Service Unavailable"}


async def test_stuck_invocations_do_not_starve_the_others(blocking: Blocking) -> None:
    gateway = LambdaGateway({"mcp_server": blocking})  # the default 30 s bound: nothing times out here
    async with anyio.create_task_group() as tg:
        stuck: list[httpx.Response] = []

        async def get() -> None:
            stuck.append(await _send(gateway, "GET", "/mcp"))

        for _ in range(8):  # more than any fixed pool of workers per function
            tg.start_soon(get)
        for _ in range(8):
            await _entered(blocking.entered)
        # Eight invocations of this function are stuck: the next one still answers.
        resp = await _send(gateway, "POST", "/mcp")
        assert resp.status_code == 200
        assert stuck == []
        blocking.release.set()
    assert [r.status_code for r in stuck] == [200] * 8


async def test_a_timed_out_async_handler_is_cancelled_and_frees_its_thread() -> None:
    finished = threading.Semaphore(0)

    def mangum_like(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # What Mangum does: run the ASGI app on the thread's event loop.
        loop = asyncio.get_event_loop()
        try:
            loop.run_until_complete(loop.create_task(asyncio.Event().wait()))
        finally:
            finished.release()
        return _ok(event, context)

    gateway = LambdaGateway({"mcp_server": mangum_like}, timeout_seconds=SHORT_BOUND)
    resp = await _send(gateway, "GET", "/mcp")
    assert resp.status_code == 503
    await _entered(finished)  # the invocation ended: its thread is free


async def test_close_cancels_invocations_in_flight() -> None:
    started = threading.Semaphore(0)

    def forever(event: dict[str, Any], context: Any) -> dict[str, Any]:
        loop = asyncio.get_event_loop()
        started.release()
        loop.run_until_complete(loop.create_task(asyncio.Event().wait()))
        return _ok(event, context)

    gateway = LambdaGateway({"mcp_server": forever})
    async with anyio.create_task_group() as tg:
        answers: list[httpx.Response] = []

        async def get() -> None:
            answers.append(await _send(gateway, "GET", "/mcp"))

        tg.start_soon(get)
        await _entered(started)
        gateway.close()
    assert answers[0].status_code == 503


async def test_a_crashing_handler_is_api_gateways_500() -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    resp = await _send(LambdaGateway({"mcp_server": crash}), "POST", "/mcp")
    assert resp.status_code == 500
    assert resp.json() == {"message": "Internal Server Error"}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
async def test_every_method_on_both_mcp_spellings_reaches_the_function(method: str, path: str) -> None:
    resp = await _send(LambdaGateway({"mcp_server": _ok}), method, path)
    assert resp.status_code == 200
    if method != "HEAD":
        assert resp.json() == {"method": method, "path": path}


def test_route_naming_the_method_wins_over_any() -> None:
    gateway = LambdaGateway({"mcp_server": _ok})
    post = gateway.match("POST", "/mcp")
    get = gateway.match("GET", "/mcp")
    slash = gateway.match("POST", "/mcp/")
    assert post is not None and post[0].route_key == "POST /mcp"
    assert get is not None and get[0].route_key == "ANY /mcp"
    assert slash is not None and slash[0].route_key == "ANY /mcp/{proxy+}"
    assert gateway.match("POST", "/mcpx") is None


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json", "text/plain"])
def test_text_that_is_not_utf8_is_passed_base64_encoded(content_type: str) -> None:
    route = next(r for r in ROUTES if r.route_key == "POST /token")

    def event(body: bytes) -> dict[str, Any]:
        headers = [("content-type", content_type)]
        return build_event(method="POST", path="/token", raw_query="", headers=headers, body=body, route=route)

    raw = b"grant_type=\xff\xfe"
    binary = event(raw)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == raw
    text = event(b"a=\xc3\xa9")
    assert (text["isBase64Encoded"], text["body"]) == (False, "a=é")
