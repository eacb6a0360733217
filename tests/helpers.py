"""Shared test helpers: RSA keys, token minting, settings, API Gateway events."""

from __future__ import annotations

import base64
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import McpSettings
from functions.core.state.grants import Grant
from local.gateway import build_event

BASE_URL = "https://mcp.example.com"
POOL_ID = "us-east-1_TestPool1"
REGION = "us-east-1"
GATEWAY_CLIENT = "gatewayclient123"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
MCP_URL = BASE_URL + "/mcp"
# Claude's client metadata as it registers (DCR body; its CIMD document adds client_id and client_uri).
CLAUDE_METADATA: dict[str, Any] = {
    "client_name": "Claude",
    "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


@dataclass
class SigningKey:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    return SigningKey(kid, pem, jwk)


def access_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "sub-alice",
        "client_id": GATEWAY_CLIENT,
        "token_use": "access",
        "scope": f"openid {MCP_URL}/notes:read {MCP_URL}/notes:write",
        "aud": MCP_URL,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": "jti-1",
        "origin_jti": "origin-alice",
        "username": "alice",
        "cognito:groups": ["editors"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@functools.cache
def _signer(private_pem: bytes, alg: str) -> Any:
    # Parsing the PEM costs ~60 ms a token; keys are immutable, so build each one once.
    return jwk.construct(private_pem.decode(), alg)


def mint(key: SigningKey, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
    return jwt.encode(claims, _signer(key.private_pem, alg), algorithm=alg, headers={"kid": kid or key.kid})


def mcp_settings(**overrides: Any) -> McpSettings:
    values: dict[str, Any] = {
        "base_url": BASE_URL,
        "user_pool_id": POOL_ID,
        "region": REGION,
        "gateway_client_id": GATEWAY_CLIENT,
        "grants_table": "grants",
        "clients_table": "clients",
        "app_tables": {"notes": "notes"},
        "jwks_url_override": "https://jwks.invalid/keys",
    }
    values.update(overrides)
    return McpSettings(**values)


def grant(
    grant_id: str = "origin-alice",
    sub: str = "sub-alice",
    scopes: tuple[str, ...] = ("notes:read", "notes:write"),
    **kw: Any,
) -> Grant:
    now = int(time.time())
    return Grant(
        grant_id=grant_id,
        sub=sub,
        client_id=kw.pop("client_id", "agent-1"),
        scopes=frozenset(scopes),
        created_at=now,
        expires_at=kw.pop("expires_at", now + 3600),
        **kw,
    )


@dataclass
class FakeJwks:
    """A JWKS fetcher that counts calls and can fail."""

    keys: list[dict[str, Any]]
    calls: int = 0
    fail: bool = False
    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> dict[str, Any]:
        from functions.core.platform.errors import DependencyError

        self.calls += 1
        self.urls.append(url)
        if self.fail:
            raise DependencyError("JWKS down")
        return {"keys": self.keys}


def rpc(method: str, params: dict[str, Any] | None = None, id_: int = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


MODERN = "2026-07-28"


def modern_meta() -> dict[str, Any]:
    """The per-request envelope MCP 2026-07-28 puts in params._meta."""
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def http_api_event(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    route = next(r for r in ROUTES if r.path == path and r.method in (method, "ANY"))
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = [("host", "localhost:8000"), *((headers or {}).items())]
    return build_event(method=method, path=path, raw_query="", headers=hdrs, body=raw, route=route)


class FakeContext:
    function_name = "test-fn"
    aws_request_id = "req-1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:test-fn"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000
