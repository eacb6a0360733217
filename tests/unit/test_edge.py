"""functions/core/platform/edge.py: the one router of the metadata, registration,
authorization and token functions, and the one mapping of refusals to answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.platform.edge import Cors, Request, Router, not_found
from functions.core.platform.errors import (
    RETRY_AFTER_SECONDS,
    DependencyError,
    OAuthError,
    RegistrationError,
    TokenError,
)
from functions.core.platform.http import Answer, RequestRejected
from functions.core.platform.routes import ROUTES, TOKEN, Route
from tests.helpers import FakeContext
from tests.observability_capture import Captured

PING = Route("POST", "/ping", "token")
CORS = Cors(allow_headers=("mcp-protocol-version", "content-type"), expose_headers=("Retry-After",))


def ev(route_key: str, **headers: str) -> dict[str, Any]:
    return {"routeKey": route_key, "headers": headers, "rawQueryString": "", "body": ""}


def router_raising(exc: Exception, **kw: Any) -> Router:
    router = Router(**kw)

    @router.route(PING)
    def ping(request: Request) -> Answer:
        raise exc

    return router


def test_dispatch_is_by_route_key_of_the_route_objects() -> None:
    router = Router(headers={"Cache-Control": "no-store"})
    seen: list[str] = []

    @router.route(PING, TOKEN)
    def ping(request: Request) -> Answer:
        seen.append(str(request.event["routeKey"]))
        return Answer(200, "ok", {"Content-Type": "text/plain"}, ("a=b; Path=/",))

    assert router(ev("POST /ping"), FakeContext()) == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "Cache-Control": "no-store"},
        "body": "ok",
        "isBase64Encoded": False,
        "cookies": ["a=b; Path=/"],
    }
    router(ev(TOKEN.route_key), FakeContext())
    assert seen == ["POST /ping", "POST /token"]


def test_unknown_route_key_gets_the_not_found_answer() -> None:
    assert Router()(ev("GET /nope"), FakeContext())["statusCode"] == 404
    assert Router()(ev("GET /nope"), FakeContext())["body"] == not_found().body
    custom = Router(not_found=lambda: Answer(404, "gone"))
    assert custom(ev("GET /nope"), FakeContext())["body"] == "gone"


def test_oauth_error_is_its_json_answer_with_its_headers() -> None:
    err = TokenError("invalid_client", "no", 401, {"WWW-Authenticate": 'Basic realm="token"'})
    result = router_raising(err)(ev("POST /ping"), FakeContext())
    assert result["statusCode"] == 401
    assert json.loads(result["body"]) == {"error": "invalid_client", "error_description": "no"}
    assert result["headers"] == {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "WWW-Authenticate": 'Basic realm="token"',
    }


def test_request_rejected_is_invalid_request() -> None:
    result = router_raising(RequestRejected("parameter a is repeated"))(ev("POST /ping"), FakeContext())
    assert result["statusCode"] == 400
    assert json.loads(result["body"]) == {"error": "invalid_request", "error_description": "parameter a is repeated"}


def test_dependency_error_is_the_routers_503_never_a_500() -> None:
    result = router_raising(DependencyError("down"))(ev("POST /ping"), FakeContext())
    assert result["statusCode"] == 503
    assert result["headers"]["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert json.loads(result["body"])["error"] == "temporarily_unavailable"
    assert "down" not in result["body"]
    page = router_raising(DependencyError("down"), unavailable=lambda: Answer(503, "<p>later</p>"))
    assert page(ev("POST /ping"), FakeContext())["body"] == "<p>later</p>"


@pytest.mark.parametrize(
    "refusal",
    [
        TokenError("invalid_grant", "no"),
        TokenError("invalid_client", "no", 401),
        RegistrationError("invalid_redirect_uri", "no"),
        RequestRejected("parameter a is repeated"),
    ],
)
def test_a_refusal_is_not_counted_as_a_dependency_503(seen: Captured, refusal: Exception) -> None:
    # DependencyUnavailable counts every 503 + Retry-After of a kit dependency and nothing else (README, Observability):
    # a 4xx must not build (and so count) the router's 503 answer.
    for router in (router_raising(refusal), router_raising(refusal, unavailable=lambda: Answer(503, "later"))):
        assert router(ev("POST /ping"), FakeContext())["statusCode"] in (400, 401)
    assert seen.counted("DependencyUnavailable") == 0
    assert router_raising(DependencyError("down"))(ev("POST /ping"), FakeContext())["statusCode"] == 503
    assert seen.counted("DependencyUnavailable") == 1


def test_other_exceptions_are_not_swallowed() -> None:
    # Only the three refusals are answers; a bug stays a crash (Lambda reports it).
    with pytest.raises(KeyError):
        router_raising(KeyError("x"))(ev("POST /ping"), FakeContext())


def test_cors_headers_only_for_cross_origin_requests() -> None:
    router = Router(cors=CORS)

    @router.route(PING)
    def ping(request: Request) -> Answer:
        return Answer(200, "{}", {"Content-Type": "application/json"})

    assert router(ev("POST /ping"), FakeContext())["headers"] == {"Content-Type": "application/json"}
    assert router(ev("POST /ping", origin="https://app.example"), FakeContext())["headers"] == {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": (
            "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key,content-type,mcp-protocol-version"
        ),
        "Access-Control-Expose-Headers": "Retry-After",
        "Access-Control-Max-Age": "86400",
    }


def test_preflight_names_the_routed_methods() -> None:
    router = Router(cors=CORS)
    router.route(PING, Route("DELETE", "/ping", "token"))(lambda request: Answer(200))
    result = router(ev("OPTIONS /ping", origin="https://app.example"), FakeContext())
    assert result["statusCode"] == 204 and result["body"] == ""
    assert result["headers"]["Access-Control-Allow-Methods"] == "DELETE,OPTIONS,POST"
    assert result["headers"]["Access-Control-Allow-Origin"] == "*"
    # Without CORS an OPTIONS request is a route like any other: 404 when not routed.
    assert Router()(ev("OPTIONS /ping"), FakeContext())["statusCode"] == 404


def test_request_view_reads_the_payload_v2_event() -> None:
    request = Request(
        {
            "headers": {"Origin": "https://a.example"},
            "cookies": ["a=1", "b = 2"],
            "pathParameters": {"client_id": "abc"},
            "requestContext": {"http": {"sourceIp": "198.51.100.7"}},
        }
    )
    assert request.header("origin") == "https://a.example"
    assert (request.cookie("b"), request.cookie("c")) == ("2", None)
    assert request.path_parameter("client_id") == "abc"
    assert request.source_ip() == "198.51.100.7"
    assert Request({}).source_ip() == "unknown"


def test_every_named_route_is_a_deployed_route() -> None:
    from functions.core.platform import routes

    named = [v for v in vars(routes).values() if isinstance(v, Route)]
    assert named and set(named) <= set(ROUTES)


def test_endpoint_error_types_are_oauth_errors() -> None:
    for err in (TokenError("invalid_grant", "x"), RegistrationError("invalid_redirect_uri", "x")):
        assert isinstance(err, OAuthError)
        assert err.body() == {"error": err.error, "error_description": "x"}
