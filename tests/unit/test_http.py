"""functions/core/platform/http.py: the request parsing shared by every function but /mcp."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from functions.authorization import api as authorization_api
from functions.core.oauth import client_auth
from functions.core.platform import http
from functions.core.platform.errors import OAuthError
from functions.token import api as token_api
from tests.helpers import FakeContext


def authorization_query(raw: str) -> dict[str, str] | None:
    return authorization_api._readable(lambda: http.query_params({"rawQueryString": raw}))


def authorization_form(event: dict[str, Any]) -> dict[str, str] | None:
    return authorization_api._readable(lambda: http.form_params(event, authorization_api.MAX_FORM_BYTES))


def token_answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /token through the token router; the form is refused before any service call."""

    def no_service() -> Any:
        raise AssertionError("the service must not be reached")

    result = token_api.make_handler(no_service)({**event, "routeKey": "POST /token"}, FakeContext())
    return result["statusCode"], json.loads(result["body"])


def form_event(body: str | bytes, *, content_type: str = http.FORM_TYPE, b64: bool = False) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else body.encode()
    return {
        "headers": {"Content-Type": content_type},
        "body": base64.b64encode(raw).decode() if b64 else raw.decode("latin-1"),
        "isBase64Encoded": b64,
    }


def test_header_is_case_insensitive() -> None:
    event = {"headers": {"Authorization": "Basic x", "content-type": "text/plain"}}
    assert http.header(event, "authorization") == "Basic x"
    assert http.header(event, "content-type") == "text/plain"
    assert http.header(event, "cookie") == ""
    assert http.header({}, "authorization") == ""


def test_form_params_reads_plain_and_base64_bodies() -> None:
    assert http.form_params(form_event("a=1&b=&c=x+y"), 100) == {"a": "1", "b": "", "c": "x y"}
    assert http.form_params(form_event("a=1", b64=True), 100) == {"a": "1"}
    event = form_event("a=1", content_type="Application/X-WWW-Form-Urlencoded; charset=utf-8")
    assert http.form_params(event, 100) == {"a": "1"}


def test_form_params_size_bound_counts_decoded_bytes() -> None:
    assert http.form_params(form_event("a=" + "x" * 8), 10) == {"a": "x" * 8}
    with pytest.raises(http.RequestRejected, match="too large"):
        http.form_params(form_event("a=" + "x" * 9), 10)
    with pytest.raises(http.RequestRejected, match="too large"):
        http.form_params(form_event("a=" + "x" * 9, b64=True), 10)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (form_event("a=1", content_type="application/json"), "the body must be application/x-www-form-urlencoded"),
        ({"body": "a=1"}, "the body must be application/x-www-form-urlencoded"),
        ({**form_event("a=1"), "body": "not base64!", "isBase64Encoded": True}, "the body is not valid form data"),
        (form_event(b"a=\xff\xfe", b64=True), "the body is not valid form data"),
        (form_event("a=1&b=2&a=3"), "parameter a is repeated"),
    ],
)
def test_form_params_rejections(event: dict[str, Any], message: str) -> None:
    with pytest.raises(http.RequestRejected) as info:
        http.form_params(event, 1024)
    assert str(info.value) == message


def test_query_params_reject_repeats() -> None:
    assert http.query_params({"rawQueryString": "a=1&b="}) == {"a": "1", "b": ""}
    assert http.query_params({}) == {}
    with pytest.raises(http.RequestRejected, match="parameter a is repeated"):
        http.query_params({"rawQueryString": "a=1&a=1"})


def test_authorization_turns_rejections_into_none() -> None:
    assert authorization_query("a=1&a=2") is None
    assert authorization_form(form_event("a=1&a=2")) is None
    assert authorization_form(form_event("a=" + "x" * authorization_api.MAX_FORM_BYTES)) is None
    assert authorization_form(form_event("a=1")) == {"a": "1"}


def test_token_router_turns_rejections_into_invalid_request() -> None:
    status, body = token_answer(form_event("grant_type=x&grant_type=y"))
    assert status == 400
    assert body == {"error": "invalid_request", "error_description": "parameter grant_type is repeated"}
    status, body = token_answer(form_event("a=" + "x" * token_api.MAX_FORM_BYTES))
    assert (status, body["error"], body["error_description"]) == (400, "invalid_request", "the body is too large")


# --------------------------------------------------------------------------- hostile input
LONE_SURROGATE_FORM = {"headers": {"Content-Type": http.FORM_TYPE}, "body": "a=\ud800", "isBase64Encoded": False}


def test_authorization_refuses_lone_surrogates() -> None:
    # A lone surrogate cannot be UTF-8 encoded: it would break echoing state in a redirect.
    assert authorization_query("state=\ud800") is None
    assert authorization_query("\udfff=1") is None
    assert authorization_form(LONE_SURROGATE_FORM) is None
    # Non-ASCII that is valid text is read as usual (the flow compares it safely).
    assert authorization_query("state=%C3%A9") == {"state": "\u00e9"}


def test_token_router_refuses_lone_surrogates_as_invalid_request() -> None:
    status, body = token_answer(LONE_SURROGATE_FORM)
    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "value",
    ["Basic \u00e9", "Basic \ud800", "Basic !!", "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Basic Zm9v"],
)
def test_malformed_basic_header_is_invalid_client(value: str) -> None:
    with pytest.raises(OAuthError) as info:
        client_auth._parse_basic(value)
    assert (info.value.error, info.value.status) == ("invalid_client", 401)


def test_form_body_with_lone_surrogate_is_rejected_not_a_crash() -> None:
    event = {"headers": {"content-type": http.FORM_TYPE}, "body": "a=\ud800", "isBase64Encoded": False}
    with pytest.raises(http.RequestRejected):
        http.form_params(event, 1024)
