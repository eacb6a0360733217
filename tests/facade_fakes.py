"""In-memory fakes shared by the facade's tests (authorize, token; their own checks are in
tests/unit/test_facade_fakes.py).

* ``FakeCipher``: AES-GCM with the encryption context as associated data, so a ciphertext
  only decrypts under the context it was made with (like KMS).
* ``FakeCognito``: the Cognito OAuth client; mints real RS256 access tokens (verified by the
  kit's real verifier against a fake JWKS) and ID tokens, records revocations.
* ``Facade``: every repository in memory, wired into both services.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from functions.authorization.flow import AuthorizationService
from functions.core.clients.records import ClientRecord
from functions.core.cognito.gateway_secret import StaticSecret
from functions.core.cognito.jwks import JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoTokens
from functions.core.cognito.token_cipher import CiphertextRejected
from functions.core.platform.crypto import s256, sha256_hex
from functions.core.platform.errors import DependencyError
from functions.core.platform.http import Answer
from functions.core.platform.settings import FacadeSettings
from functions.token.service import TokenService
from tests.fakes.state import (
    InMemoryCodeRepository,
    InMemoryConsentRepository,
    InMemoryGrantRepository,
    InMemoryPendingRequestRepository,
    InMemoryRefreshTokenRepository,
)
from tests.helpers import BASE_URL, GATEWAY_CLIENT, ISSUER, MCP_URL, POOL_ID, REGION, FakeJwks, make_key, mint

KEY = make_key("facade-test")
GATEWAY_SECRET = "gateway-secret-for-tests"
PUBLIC_REDIRECT = "http://127.0.0.1:33418/callback"
CONF_REDIRECT = "https://agent.example.org/cb"
CIMD_ID = "https://agent.example.net/client.json"
VERIFIER = "v" * 43 + "-verifier"
CHALLENGE = s256(VERIFIER)


def facade_settings(**overrides: Any) -> FacadeSettings:
    values: dict[str, Any] = {
        "base_url": BASE_URL,
        "user_pool_id": POOL_ID,
        "region": REGION,
        "gateway_client_id": GATEWAY_CLIENT,
        "jwks_url_override": "https://jwks.invalid/keys",
        "cognito_domain_url": "https://auth.example.com",
        "clients_table": "clients",
        "artefacts_table": "artefacts",
        "grants_table": "grants",
        "kms_key_id": "alias/kit",
        "scope_group_ceilings": {"notes:write": ("editors",)},
    }
    values.update(overrides)
    return FacadeSettings(**values)


class FakeCipher:
    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self.fail = False

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        if self.fail:
            raise DependencyError("KMS down")
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, json.dumps(dict(context), sort_keys=True).encode())

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        if self.fail:
            raise DependencyError("KMS down")
        try:
            aad = json.dumps(dict(context), sort_keys=True).encode()
            return self._aead.decrypt(ciphertext[:12], ciphertext[12:], aad)
        except InvalidTag:
            raise CiphertextRejected("InvalidCiphertextException") from None


class FakeResolver:
    def __init__(self, *clients: ClientRecord) -> None:
        self.clients = {c.client_id: c for c in clients}
        self.fail = False

    def resolve(self, client_id: str) -> ClientRecord | None:
        if self.fail:
            raise DependencyError("clients table down")
        return self.clients.get(client_id)


@dataclass
class User:
    sub: str = "sub-alice"
    username: str = "alice"
    email: str = "alice@example.com"
    groups: tuple[str, ...] = ("editors",)


@dataclass
class FakeCognito:
    user: User = field(default_factory=User)
    access_ttl: int = 3600
    sessions: dict[str, str] = field(default_factory=dict)  # refresh token -> origin_jti
    revoked: list[str] = field(default_factory=list)
    exchanged: list[tuple[str, str, str]] = field(default_factory=list)
    refreshes: int = 0
    fail: bool = False
    invalid_grant: bool = False
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    access_overrides: dict[str, Any] = field(default_factory=dict)
    rotate: bool = False

    def access_token(self, origin_jti: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": self.user.sub,
            "client_id": GATEWAY_CLIENT,
            "token_use": "access",
            "scope": f"openid email {MCP_URL}/notes:read {MCP_URL}/notes:write",
            "aud": MCP_URL,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": str(uuid.uuid4()),
            "origin_jti": origin_jti,
            "username": self.user.username,
            "cognito:groups": list(self.user.groups),
        }
        claims.update(self.access_overrides)
        return mint(KEY, {k: v for k, v in claims.items() if v is not None})

    def _id_token(self) -> str:
        claims = {"iss": ISSUER, "aud": GATEWAY_CLIENT, "sub": self.user.sub, "email": self.user.email}
        claims.update(self.id_token_overrides)
        return mint(KEY, claims)

    def _check(self) -> None:
        if self.fail:
            raise DependencyError("Cognito unreachable")
        if self.invalid_grant:
            raise CognitoInvalidGrant("/oauth2/token")

    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> CognitoTokens:
        self._check()
        self.exchanged.append((code, redirect_uri, verifier))
        origin, refresh = str(uuid.uuid4()), "cognito-rt-" + uuid.uuid4().hex
        self.sessions[refresh] = origin
        return CognitoTokens(self.access_token(origin), self.access_ttl, self._id_token(), refresh)

    def refresh(self, refresh_token: str) -> CognitoTokens:
        self._check()
        self.refreshes += 1
        origin = self.sessions.get(refresh_token)
        if origin is None:
            raise CognitoInvalidGrant("/oauth2/token")
        new_refresh = None
        if self.rotate:
            new_refresh = "cognito-rt-" + uuid.uuid4().hex
            self.sessions[new_refresh] = self.sessions.pop(refresh_token)
        return CognitoTokens(self.access_token(origin), self.access_ttl, self._id_token(), new_refresh)

    def revoke(self, refresh_token: str) -> None:
        if self.fail:
            raise DependencyError("Cognito unreachable")
        self.revoked.append(refresh_token)
        self.sessions.pop(refresh_token, None)


def public_client(**kw: Any) -> ClientRecord:
    values: dict[str, Any] = {
        "client_id": "public-agent",
        "kind": "registered",
        "redirect_uris": (PUBLIC_REDIRECT,),
        "token_endpoint_auth_method": "none",
        "client_name": "Agent <b>Smith</b>",
    }
    values.update(kw)
    return ClientRecord(**values)


def confidential_client(
    method: str = "client_secret_basic",
    secret: str = "s3cret",  # noqa: S107 (a test secret)
    **kw: Any,
) -> ClientRecord:
    values: dict[str, Any] = {
        "client_id": "conf-agent",
        "kind": "registered",
        "redirect_uris": (CONF_REDIRECT,),
        "token_endpoint_auth_method": method,
        "client_secret_hash": sha256_hex(secret),
        "client_name": "Confidential agent",
    }
    values.update(kw)
    return ClientRecord(**values)


def cimd_client(**kw: Any) -> ClientRecord:
    values: dict[str, Any] = {
        "client_id": CIMD_ID,
        "kind": "cimd",
        "redirect_uris": ("https://agent.example.net/cb",),
        "token_endpoint_auth_method": "none",
        "client_name": "Net Agent",
    }
    values.update(kw)
    return ClientRecord(**values)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Facade:
    settings: FacadeSettings = field(default_factory=facade_settings)
    resolver: FakeResolver = field(default_factory=lambda: FakeResolver(public_client(), confidential_client()))
    txns: InMemoryPendingRequestRepository = field(default_factory=InMemoryPendingRequestRepository)
    codes: InMemoryCodeRepository = field(default_factory=InMemoryCodeRepository)
    grants: InMemoryGrantRepository = field(default_factory=InMemoryGrantRepository)
    rts: InMemoryRefreshTokenRepository = field(default_factory=InMemoryRefreshTokenRepository)
    consents: InMemoryConsentRepository = field(default_factory=InMemoryConsentRepository)
    cipher: FakeCipher = field(default_factory=FakeCipher)
    cognito: FakeCognito = field(default_factory=FakeCognito)
    clock: Clock = field(default_factory=Clock)
    jwks: FakeJwks = field(default_factory=lambda: FakeJwks([KEY.public_jwk]))

    def __post_init__(self) -> None:
        # A refresh records its session on the grant in the same atomic step as the rotation.
        if self.rts.grants is None:
            self.rts.grants = self.grants
        # An approval and a redemption are atomic across repositories, like DynamoDB transactions.
        self.codes.link(self.grants, self.rts)
        self.txns.link(self.codes, self.grants, self.consents)

    def verifier(self) -> CognitoAccessTokenVerifier:
        return CognitoAccessTokenVerifier(
            self.settings, JwksCache(self.settings.jwks_url, min_refresh_seconds=60, fetcher=self.jwks)
        )

    def authorization(self) -> AuthorizationService:
        return AuthorizationService(
            self.settings,
            clients=self.resolver,
            txns=self.txns,
            consents=self.consents,
            cipher=self.cipher,
            cognito=self.cognito,
            secret=StaticSecret(GATEWAY_SECRET),
            verifier=self.verifier(),
            clock=self.clock,
        )

    def token(self) -> TokenService:
        return TokenService(
            self.settings,
            clients=self.resolver,
            codes=self.codes,
            grants=self.grants,
            refresh_tokens=self.rts,
            consents=self.consents,
            cipher=self.cipher,
            cognito=self.cognito,
            secret=StaticSecret(GATEWAY_SECRET),
            verifier=self.verifier(),
            clock=self.clock,
        )


# --------------------------------------------------------------------------- flow helpers
def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def cookie_of(answer: Answer) -> str:
    """The value of the transaction cookie the answer sets."""
    first = answer.cookies[0].split(";")[0]
    return first.partition("=")[2]


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "public-agent",
        "redirect_uri": PUBLIC_REDIRECT,
        "state": "client-state",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "scope": "notes:read notes:write",
        "resource": MCP_URL,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@dataclass
class Started:
    cookie: str
    txn_id: str
    upstream: dict[str, str]


def start(facade: Facade, **overrides: str | None) -> Started:
    answer = facade.authorization().authorize(authorize_params(**overrides))
    assert answer.status == 302, answer.body
    upstream = query_of(answer.headers["Location"])
    return Started(cookie_of(answer), upstream["state"], upstream)


def csrf_of(page: Answer) -> str:
    marker = 'name=csrf value="'
    i = page.body.index(marker) + len(marker)
    return page.body[i : page.body.index('"', i)]


def approve(facade: Facade, **overrides: str | None) -> dict[str, str]:
    """authorize -> callback -> consent(approve); the client's redirect query."""
    started = start(facade, **overrides)
    page = callback(facade, started)
    if page.status == 302:  # remembered consent skipped the page
        return query_of(page.headers["Location"])
    assert page.status == 200, page.body
    return approve_page(facade, started, page)


def callback(facade: Facade, started: Started, **params: str) -> Answer:
    """GET /oauth/callback with Cognito's code (``params`` override it) and the started cookie."""
    values = {"code": "cognito-code", "state": started.txn_id, **params}
    return facade.authorization().callback(values, started.cookie)


def to_consent_page(facade: Facade, **overrides: str | None) -> tuple[Started, Answer]:
    """authorize -> callback, asserting the consent page (200) is shown; (started, page)."""
    started = start(facade, **overrides)
    page = callback(facade, started)
    assert page.status == 200, page.body
    return started, page


def approve_page(facade: Facade, started: Started, page: Answer) -> dict[str, str]:
    """POST /consent approving ``page``; the client's redirect query."""
    answer = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert answer.status == 302, answer.body
    return query_of(answer.headers["Location"])


def code_form(code: str, **extra: str) -> dict[str, str]:
    """The authorization_code grant of /token for the public agent's ``code`` (``extra`` added)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PUBLIC_REDIRECT,
        "code_verifier": VERIFIER,
        **extra,
    }
