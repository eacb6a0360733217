"""functions/core/platform/http.py: the request parsing shared by the authorization and token functions."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from functions.authorization import web as authorization_web
from functions.core.platform import http
from functions.core.platform.errors import OAuthError
from functions.token import web as token_web


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


def test_authorization_web_turns_rejections_into_none() -> None:
    assert authorization_web.query_params({"rawQueryString": "a=1&a=2"}) is None
    assert authorization_web.form_params(form_event("a=1&a=2")) is None
    assert authorization_web.form_params(form_event("a=" + "x" * authorization_web.MAX_FORM_BYTES)) is None
    assert authorization_web.form_params(form_event("a=1")) == {"a": "1"}


def test_token_web_turns_rejections_into_invalid_request() -> None:
    with pytest.raises(OAuthError) as info:
        token_web.form_params(form_event("grant_type=x&grant_type=y"))
    assert (info.value.error, info.value.description, info.value.status) == (
        "invalid_request",
        "parameter grant_type is repeated",
        400,
    )
    with pytest.raises(OAuthError, match="too large"):
        token_web.form_params(form_event("a=" + "x" * token_web.MAX_FORM_BYTES))
    assert token_web.form_params(form_event("a=1")) == {"a": "1"}


# --------------------------------------------------------------------------- hostile input
LONE_SURROGATE_FORM = {"headers": {"Content-Type": http.FORM_TYPE}, "body": "a=\ud800", "isBase64Encoded": False}


def test_authorization_web_refuses_lone_surrogates() -> None:
    # A lone surrogate cannot be UTF-8 encoded: it would break echoing state in a redirect.
    assert authorization_web.query_params({"rawQueryString": "state=\ud800"}) is None
    assert authorization_web.query_params({"rawQueryString": "\udfff=1"}) is None
    assert authorization_web.form_params(LONE_SURROGATE_FORM) is None
    # Non-ASCII that is valid text is read as usual (the flow compares it safely).
    assert authorization_web.query_params({"rawQueryString": "state=%C3%A9"}) == {"state": "\u00e9"}


def test_token_web_refuses_lone_surrogates_as_invalid_request() -> None:
    with pytest.raises(OAuthError) as info:
        token_web.form_params(LONE_SURROGATE_FORM)
    assert (info.value.error, info.value.status) == ("invalid_request", 400)


@pytest.mark.parametrize(
    "value",
    ["Basic \u00e9", "Basic \ud800", "Basic !!", "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Basic Zm9v"],
)
def test_malformed_basic_header_is_invalid_client(value: str) -> None:
    with pytest.raises(OAuthError) as info:
        token_web._parse_basic(value)
    assert (info.value.error, info.value.status) == ("invalid_client", 401)


def test_form_body_with_lone_surrogate_is_rejected_not_a_crash() -> None:
    event = {"headers": {"content-type": http.FORM_TYPE}, "body": "a=\ud800", "isBase64Encoded": False}
    with pytest.raises(http.RequestRejected):
        http.form_params(event, 1024)
