"""The gateway client's Cognito side: the OAuth client (over real loopback HTTP), the gateway
secret cache and derived keys, and KMS encryption bound to its item (moto, in process)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.core.cognito.gateway_secret import GatewaySecret, StaticSecret, cookie_key, gateway_pkce_verifier
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuthClient
from functions.core.cognito.token_cipher import CiphertextRejected, KmsTokenCipher, grant_context, txn_context
from functions.core.platform.crypto import PKCE_VERIFIER
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


# --------------------------------------------------------------------------- gateway secret
class FakeIdp:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, 0

    def describe_user_pool_client(self, **kw: Any) -> Any:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_gateway_secret_is_cached_until_invalidated() -> None:
    idp = FakeIdp({"UserPoolClient": {"ClientSecret": "abc"}})
    secret = GatewaySecret("pool", "gw", idp)
    assert secret.get() == secret.get() == "abc" and idp.calls == 1
    secret.invalidate()
    assert secret.get() == "abc" and idp.calls == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"UserPoolClient": {}},  # a public gateway client: refuse to run
        ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeUserPoolClient"),
    ],
)
def test_gateway_secret_failures(answer: Any) -> None:
    with pytest.raises(DependencyError):
        GatewaySecret("pool", "gw", FakeIdp(answer)).get()


def test_derived_keys_are_purpose_bound_and_stable() -> None:
    secret = StaticSecret("root")
    verifier = gateway_pkce_verifier(secret, "txn-1")
    assert PKCE_VERIFIER.match(verifier) and len(verifier) == 43
    assert verifier == gateway_pkce_verifier(secret, "txn-1") != gateway_pkce_verifier(secret, "txn-2")
    assert cookie_key(secret) != cookie_key(StaticSecret("other"))


# --------------------------------------------------------------------------- KMS
@pytest.fixture
def kms_cipher(monkeypatch: pytest.MonkeyPatch) -> Iterator[KmsTokenCipher]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        yield KmsTokenCipher(key_id, client)


def test_kms_round_trip_with_context(kms_cipher: KmsTokenCipher) -> None:
    blob = kms_cipher.encrypt(b"cognito-refresh", grant_context("g1"))
    assert b"cognito-refresh" not in blob
    assert kms_cipher.decrypt(blob, grant_context("g1")) == b"cognito-refresh"


@pytest.mark.parametrize("other", [grant_context("g2"), txn_context("g1"), {}])
def test_ciphertext_copied_to_another_item_does_not_decrypt(kms_cipher: KmsTokenCipher, other: dict) -> None:
    blob = kms_cipher.encrypt(b"cognito-refresh", grant_context("g1"))
    with pytest.raises(CiphertextRejected):
        kms_cipher.decrypt(blob, other)


def test_kms_outage_is_a_dependency_error() -> None:
    class Broken:
        def encrypt(self, **kw: Any) -> Any:
            raise ClientError({"Error": {"Code": "KMSInternalException"}}, "Encrypt")

        decrypt = encrypt

    cipher = KmsTokenCipher("k", Broken())
    with pytest.raises(DependencyError):
        cipher.encrypt(b"x", grant_context("g"))
    with pytest.raises(DependencyError):
        cipher.decrypt(b"x", grant_context("g"))
