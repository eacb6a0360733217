"""The Cognito OAuth client against a loopback HTTP server: request shapes, typed answers,
the dropped secret on invalid_client, and every failure a 503 (``DependencyError``)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from functions.core.cognito.gateway_secret import StaticSecret
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuthClient
from functions.core.platform.errors import DependencyError


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body: bytes = json.dumps({"access_token": "a.b.c", "expires_in": 3600, "refresh_token": "r"}).encode()


@pytest.fixture
def cognito() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            recorder.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("authorization"),
                    "content_type": self.headers.get("content-type"),
                    "form": {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()},
                }
            )
            self.send_response(recorder.status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(recorder.body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()


class CountingSecret(StaticSecret):
    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.invalidated = 0

    def invalidate(self) -> None:
        self.invalidated += 1


def test_code_exchange_request_shape(cognito: tuple[str, Recorder]) -> None:
    url, rec = cognito
    tokens = CognitoOAuthClient(url, "gw", StaticSecret("sec")).exchange_code("c0de", "https://b/cb", "v" * 43)
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == ("a.b.c", "r", 3600)
    (req,) = rec.requests
    assert req["path"] == "/oauth2/token"
    assert req["authorization"] == "Basic " + base64.b64encode(b"gw:sec").decode()
    assert req["content_type"] == "application/x-www-form-urlencoded"
    assert req["form"] == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": "https://b/cb",
        "code_verifier": "v" * 43,
    }


def test_refresh_and_revoke_request_shapes(cognito: tuple[str, Recorder]) -> None:
    url, rec = cognito
    client = CognitoOAuthClient(url, "gw", StaticSecret("sec"))
    rec.body = json.dumps({"access_token": "x.y.z", "expires_in": 60, "id_token": "i.d.t"}).encode()
    tokens = client.refresh("rt")
    assert tokens.refresh_token is None and tokens.id_token == "i.d.t"
    rec.body = b""
    client.revoke("rt")
    assert rec.requests[0]["form"] == {"grant_type": "refresh_token", "refresh_token": "rt"}
    assert rec.requests[1]["path"] == "/oauth2/revoke" and rec.requests[1]["form"] == {"token": "rt"}


def test_invalid_grant_is_typed(cognito: tuple[str, Recorder]) -> None:
    url, rec = cognito
    rec.status, rec.body = 400, b'{"error":"invalid_grant"}'
    with pytest.raises(CognitoInvalidGrant):
        CognitoOAuthClient(url, "gw", StaticSecret("s")).refresh("rt")


def test_invalid_client_drops_the_cached_secret(cognito: tuple[str, Recorder]) -> None:
    url, rec = cognito
    rec.status, rec.body = 401, b'{"error":"invalid_client"}'
    secret = CountingSecret("s")
    with pytest.raises(DependencyError):
        CognitoOAuthClient(url, "gw", secret).refresh("rt")
    assert secret.invalidated == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"boom"),
        (400, b'{"error":"invalid_request"}'),
        (200, b"not json"),
        (200, b'{"token_type":"Bearer"}'),  # no access token
        (200, b'{"access_token":"a","expires_in":"soon","refresh_token":"r"}'),
    ],
)
def test_other_answers_are_dependency_errors(cognito: tuple[str, Recorder], status: int, body: bytes) -> None:
    url, rec = cognito
    rec.status, rec.body = status, body
    with pytest.raises(DependencyError):
        CognitoOAuthClient(url, "gw", StaticSecret("s")).exchange_code("c", "r", "v")


def test_code_exchange_requires_a_refresh_token(cognito: tuple[str, Recorder]) -> None:
    url, rec = cognito
    rec.body = b'{"access_token":"a","expires_in":10}'
    with pytest.raises(DependencyError):
        CognitoOAuthClient(url, "gw", StaticSecret("s")).exchange_code("c", "r", "v")


def test_unreachable_cognito_is_a_dependency_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    with pytest.raises(DependencyError):
        CognitoOAuthClient(f"http://127.0.0.1:{port}", "gw", StaticSecret("s")).refresh("rt")
