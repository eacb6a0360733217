"""API Gateway HTTP API (payload 2.0) requests and answers, shared by every function but /mcp.

Parameters may appear at most once (RFC 6749 section 3.1), so parsing works on the raw query
string and body, never on ``queryStringParameters``: API Gateway joins repeated keys there
with commas. Each caller decides how a refusal is answered (an HTML page, an OAuth error).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl

FORM_TYPE: Final = "application/x-www-form-urlencoded"


class RequestRejected(Exception):
    """The request's parameters cannot be read; the message says why (safe to show the client)."""


def header(event: Mapping[str, Any], name: str) -> str:
    """The first header called ``name`` (lower case), in any case; "" when absent."""
    for key, value in (event.get("headers") or {}).items():
        if str(key).lower() == name:
            return str(value)
    return ""


# A lone UTF-16 surrogate (e.g. %ED%A0%80 decoded with "surrogateescape", or a str event body)
# cannot be UTF-8 encoded: it would crash later, when a value is hashed, stored or echoed.
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def unique_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Parameters as a dict; ``RequestRejected`` when one is repeated or not encodable text."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise RequestRejected(f"parameter {key[:40]} is repeated")
        if _SURROGATE.search(key) or _SURROGATE.search(value):
            raise RequestRejected("a parameter is not valid text")
        out[key] = value
    return out


def query_params(event: Mapping[str, Any]) -> dict[str, str]:
    """The query string's parameters (``RequestRejected`` when one repeats)."""
    return unique_params(parse_qsl(str(event.get("rawQueryString") or ""), keep_blank_values=True))


def form_params(event: Mapping[str, Any], max_bytes: int) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body of at most ``max_bytes`` (decoded) bytes.

    ``RequestRejected`` when the content type is another, the body is too large, not valid
    base64 or UTF-8, or a parameter repeats.
    """
    if header(event, "content-type").split(";")[0].strip().lower() != FORM_TYPE:
        raise RequestRejected(f"the body must be {FORM_TYPE}")
    raw = str(event.get("body") or "")
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
        if len(body) > max_bytes:
            raise RequestRejected("the body is too large")
        text = body.decode()
    except (binascii.Error, UnicodeError):
        # UnicodeError covers undecodable bytes and a str body holding lone surrogates.
        raise RequestRejected("the body is not valid form data") from None
    return unique_params(parse_qsl(text, keep_blank_values=True))


def cookie(event: Mapping[str, Any], name: str) -> str | None:
    """The value of the request cookie ``name`` (payload 2.0 ``cookies``), or None."""
    for raw in event.get("cookies") or []:
        key, sep, value = str(raw).partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


def decoded_body(event: Mapping[str, Any]) -> str | None:
    """The body as text: base64-decoded when ``isBase64Encoded`` (lenient, as Powertools decodes).

    ``ValueError`` (``binascii.Error`` or ``UnicodeError``) when it is not valid base64 or
    not UTF-8; the caller answers that in its endpoint's error shape.
    """
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        return base64.b64decode(str(body).encode()).decode()
    return None if body is None else str(body)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, the only answer type of the kit's functions.

    ``status`` is the HTTP status code, ``body`` the text sent as is (JSON, HTML or ""),
    ``headers`` the response headers, ``cookies`` full ``Set-Cookie`` values. ``to_lambda``
    shapes it as the API Gateway HTTP API payload 2.0 response; the MCP function adapts
    it to a Starlette response instead.
    """

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: tuple[str, ...] = ()

    def with_headers(self, extra: Mapping[str, str]) -> Answer:
        """The same answer with ``extra`` headers added (they win over existing ones)."""
        return replace(self, headers={**self.headers, **extra})

    def to_lambda(self) -> dict[str, Any]:
        """The payload 2.0 response: API Gateway emits one ``Set-Cookie`` per cookie."""
        return {
            "statusCode": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "isBase64Encoded": False,
            "cookies": list(self.cookies),
        }
