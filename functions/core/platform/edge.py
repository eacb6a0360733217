"""The one HTTP edge of the metadata, registration, authorization and token functions.

API Gateway (and the local gateway, which builds the same payload 2.0 event) has already
matched the request to one of ``routes.ROUTES``; the event's ``routeKey`` is that route's
``Route.route_key``, so a ``Router`` dispatches on it and never matches paths a second time.
Parameters are read from the raw query string and body (``http.query_params`` and
``http.form_params``), where a repeated parameter can still be refused (RFC 6749 section 3.1).
Every refusal and dependency failure becomes an answer in one place
(``errors.answer_for_error``).

The kit keeps this router instead of Powertools' ``APIGatewayHttpResolver``: the route is
already chosen by ``routeKey`` (one home, ``routes.py``), the token and authorization
functions never imported the resolver (it adds about 0.1 s of imports to a cold start here),
and their answers (unconditional CORS on /token, ``Set-Cookie`` strings) stay exactly theirs.
``Cors`` reproduces the resolver's CORS answers for metadata and registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.core.platform import http
from functions.core.platform.errors import DependencyError, OAuthError, answer_for_error, unavailable_answer
from functions.core.platform.http import Answer, RequestRejected
from functions.core.platform.routes import Route

# Always allowed in a CORS preflight answer (what Powertools' resolver adds to every list).
_BASE_ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "X-Amz-Date", "X-Api-Key", "X-Amz-Security-Token")


@dataclass(frozen=True)
class Request:
    """A view of one payload 2.0 event; parsing helpers raise ``RequestRejected``."""

    event: Mapping[str, Any]

    def header(self, name: str) -> str:
        """The header ``name`` (lower case) in any case; "" when absent."""
        return http.header(self.event, name)

    def query(self) -> dict[str, str]:
        """The query parameters; ``RequestRejected`` when one repeats or is not text."""
        return http.query_params(self.event)

    def form(self, max_bytes: int) -> dict[str, str]:
        """The form body of at most ``max_bytes`` bytes; ``RequestRejected`` when unreadable."""
        return http.form_params(self.event, max_bytes)

    def cookie(self, name: str) -> str | None:
        """The request cookie ``name``, or None."""
        return http.cookie(self.event, name)

    def path_parameter(self, name: str) -> str:
        """The route's path variable ``name`` (``{name}`` in ``Route.path``)."""
        return str((self.event.get("pathParameters") or {}).get(name, ""))

    def source_ip(self) -> str:
        """The caller's address as API Gateway saw it; "unknown" when absent."""
        context = self.event.get("requestContext") or {}
        return str((context.get("http") or {}).get("sourceIp") or "unknown")


Endpoint = Callable[[Request], Answer]


def not_found() -> Answer:
    """404 for a route key the function has no endpoint for (the body Powertools' resolver gave)."""
    return Answer(404, '{"statusCode":404,"message":"Not found"}', {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Cors:
    """CORS for anonymous cross-origin readers (no cookies): ``*`` for any ``Origin``.

    Headers are added only when the request has an ``Origin`` (Fetch standard: only CORS
    requests need them); a preflight (``OPTIONS``) is answered 204 with the methods routed.
    """

    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...] = ()
    max_age: int = 86400

    def headers(self, request: Request) -> dict[str, str]:
        """The CORS response headers for ``request``; {} when it has no ``Origin``."""
        if not request.header("origin"):
            return {}
        out = {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Headers": ",".join(sorted({*_BASE_ALLOW_HEADERS, *self.allow_headers})),
        }
        if self.expose_headers:
            out["Access-Control-Expose-Headers"] = ",".join(self.expose_headers)
        out["Access-Control-Max-Age"] = str(self.max_age)
        return out


class Router:
    """Dispatches an event to the endpoint of its ``routeKey`` and shapes every answer.

    ``headers``: added to every answer (e.g. ``Cache-Control: no-store`` at /token).
    ``cors``: CORS headers by ``Origin`` and automatic preflights, or None.
    ``not_found``: the answer for a route key without an endpoint.
    ``unavailable``: the answer for a ``DependencyError`` (a 503 with ``Retry-After``).
    """

    def __init__(
        self,
        *,
        not_found: Callable[[], Answer] = not_found,
        unavailable: Callable[[], Answer] = unavailable_answer,
        headers: Mapping[str, str] | None = None,
        cors: Cors | None = None,
    ) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self._methods: set[str] = {"OPTIONS"}
        self._not_found, self._unavailable = not_found, unavailable
        self._headers = dict(headers or {})
        self._cors = cors

    def route(self, *routes: Route) -> Callable[[Endpoint], Endpoint]:
        """Register the decorated endpoint for ``routes`` (from ``routes.ROUTES``)."""

        def register(endpoint: Endpoint) -> Endpoint:
            for route in routes:
                self._endpoints[route.route_key] = endpoint
                self._methods.add(route.method)
            return endpoint

        return register

    def answer(self, request: Request) -> Answer:
        """The answer to ``request``, before the router's own headers are added."""
        endpoint = self._endpoints.get(str(request.event.get("routeKey", "")))
        if endpoint is None:
            method = str(request.event.get("routeKey", "")).partition(" ")[0]
            if self._cors is not None and method == "OPTIONS":
                return Answer(204, "", {"Access-Control-Allow-Methods": ",".join(sorted(self._methods))})
            return self._not_found()
        try:
            return endpoint(request)
        except (OAuthError, RequestRejected, DependencyError) as exc:
            # The 503 is built (and counted) only for a dependency failure, never for a refusal.
            return answer_for_error(exc, unavailable=self._unavailable)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler: the payload 2.0 response to ``event``."""
        del context
        request = Request(event)
        answer = self.answer(request)
        extra = {**(self._cors.headers(request) if self._cors else {}), **self._headers}
        return answer.with_headers(extra).to_lambda() if extra else answer.to_lambda()
