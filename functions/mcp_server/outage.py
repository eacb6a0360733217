"""Dependency outages inside tool calls, turned into ``503`` + ``Retry-After`` at /mcp.

A tool (or its repository) raises the kit's ``DependencyError`` when storage or another
dependency fails. The SDK would report that as a tool result with ``isError: true`` and
HTTP 200, which tells a client the call was made and failed for good. It was not made: the
endpoint answers the whole request with 503 and ``Retry-After`` instead (RFC 9110 sections
15.6.4 and 10.2.3), like every other outage of the kit, so the client retries.

The endpoint opens a :class:`Watch` per request; the server reports into it from the task
the SDK runs the tool in (a ``ContextVar`` is copied into those tasks, the watch object is
shared), and the endpoint's ``send`` wrapper replaces the response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from functions.core.platform.errors import DependencyError, unavailable_answer
from functions.core.platform.observability import logger

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Watch:
    """What the tools of one request reported; ``detail`` is set once one failed."""

    detail: str | None = None


_current: ContextVar[Watch | None] = ContextVar("mcp_outage_watch", default=None)


def dependency_cause(exc: BaseException) -> DependencyError | None:
    """The ``DependencyError`` behind an exception the SDK wrapped (``__cause__`` chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DependencyError):
            return seen
        seen = seen.__cause__
    return None


def report(error: DependencyError) -> None:
    """Record an outage for the current request (a no-op outside one)."""
    watch = _current.get()
    if watch is not None and watch.detail is None:
        watch.detail = str(error)


def watching(send: Send) -> tuple[Send, object]:
    """Open a watch for this request: a ``send`` that answers 503 once a tool reported an
    outage, and the token to close it with :func:`close`."""
    watch = Watch()
    token = _current.set(watch)
    replaced = False

    async def wrapped(message: Message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and watch.detail is not None:
            replaced = True
            logger.warning("tool dependency failed", extra={"detail": watch.detail})
            answer = unavailable_answer()
            headers = [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
            body = answer.body.encode()
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if replaced:
            return  # the SDK's own answer, already replaced
        await send(message)

    return wrapped, token


def close(token: object) -> None:
    """End the watch ``token`` (from :func:`watching`) once the request's answer is sent."""
    _current.reset(token)  # type: ignore[arg-type]
