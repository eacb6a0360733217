"""Fault injection for every dependency call of the real handlers.

``Faults`` counts the calls each request makes to each dependency and fails exactly the
Nth call of one of them. The suite (tests/fault/test_faults.py) first runs a request with
no fault, which tells how many calls it makes to each dependency, then runs it again once
per call with that call failing. A new dependency call in a handler is therefore covered
without touching the tests.

Dependencies and where they are cut:

* ``dynamodb`` and ``kms``: the real repositories and the real KMS cipher on moto (in
  process), failed by a botocore ``before-call`` hook, so the request never reaches moto:
  throttling or a service error (a cancelled transaction for ``TransactWriteItems``), or a
  connection failure, alternating;
* ``clients``: the client resolver (a DynamoDB GetItem in AWS; the registration function's
  code, faked here);
* ``cognito``: Cognito's ``/oauth2/token`` and ``/oauth2/revoke`` (the fake client, with
  Cognito's single-use authorization codes), and ``cognito-idp``: the gateway secret
  (``DescribeUserPoolClient``);
* ``jwks``: at the verifier boundary (the facade) and at the JWKS cache boundary (``/mcp``):
  a JWKS outage raises ``DependencyError`` there, as functions/core/cognito/jwt_verifier.py reports
  one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError
from kit_app.server import add_tools
from kit_app.store import DynamoNotes
from starlette.testclient import TestClient

from functions.authorization.api import make_handler as authorization_handler
from functions.authorization.flow import AuthorizationService
from functions.core.clients.ids import DynamoRegisteredClients
from functions.core.clients.store import client_item
from functions.core.cognito.gateway_secret import StaticSecret
from functions.core.cognito.jwks import JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoTokens
from functions.core.cognito.token_cipher import KmsTokenCipher
from functions.core.platform.errors import DependencyError
from functions.core.state.codes import DynamoAuthorizationCodeRepository
from functions.core.state.consent import DynamoConsentRepository
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.pending_requests import DynamoPendingRequestRepository
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
from functions.mcp_server.factory import create_endpoint
from functions.token.api import make_handler as token_handler
from functions.token.service import TokenService
from tests.facade_fakes import (
    CHALLENGE,
    CONF_REDIRECT,
    GATEWAY_SECRET,
    KEY,
    PUBLIC_REDIRECT,
    VERIFIER,
    FakeCognito,
    FakeResolver,
    confidential_client,
    facade_settings,
    public_client,
    query_of,
)
from tests.helpers import FakeContext, FakeJwks, mcp_settings

# Looks like a registered client id, so /mcp also reads its CLIENT# item (RFC 7592 section 2.3).
PUBLIC_ID = "public-agent-registered-0001"


class InjectedFault(Exception):
    """Marks which call failed in test output; never escapes as such (always mapped)."""


@dataclass
class Faults:
    """Counts dependency calls; fails the ``n``-th call of ``dependency`` once armed."""

    calls: Counter[str] = field(default_factory=Counter)
    dependency: str | None = None
    n: int = 0
    fired: bool = False

    def arm(self, dependency: str | None, n: int = 0) -> None:
        self.calls.clear()
        self.dependency, self.n, self.fired = dependency, n, False

    def tick(self, dependency: str) -> bool:
        """Count a call; True when this call must fail."""
        self.calls[dependency] += 1
        if dependency == self.dependency and self.calls[dependency] == self.n:
            self.fired = True
            return True
        return False


def _aws_error(service: str, operation: str, n: int) -> Exception:
    if n % 2 == 0:
        return EndpointConnectionError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com")
    if operation == "TransactWriteItems":
        response: dict[str, Any] = {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}],
        }
        return ClientError(response, operation)  # type: ignore[arg-type]
    code = {"dynamodb": "ProvisionedThroughputExceededException", "kms": "KMSInternalException"}[service]
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


def instrument(client: Any, service: str, faults: Faults) -> Any:
    """Hook ``faults`` into a boto3 client: every API call counts, the armed one fails."""

    def before_call(model: Any, **_: Any) -> None:
        if faults.tick(service):
            raise _aws_error(service, model.name, faults.n)

    client.meta.events.register(f"before-call.{service}", before_call)
    return client


class Faulty:
    """A proxy counting every public method call of ``target`` as a call to ``dependency``."""

    def __init__(self, target: Any, dependency: str, faults: Faults) -> None:
        self._target, self._dependency, self._faults = target, dependency, faults

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._faults.tick(self._dependency):
                raise DependencyError(f"{self._dependency} unavailable (injected)") from InjectedFault()
            return attr(*args, **kwargs)

        return call


@dataclass
class SingleUseCognito(FakeCognito):
    """Cognito's codes are single use (RFC 6749 section 4.1.2), even when the answer is lost."""

    spent: set[str] = field(default_factory=set)

    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> CognitoTokens:
        if code in self.spent:
            raise CognitoInvalidGrant("/oauth2/token")
        tokens = super().exchange_code(code, redirect_uri, verifier)
        self.spent.add(code)
        return tokens


@dataclass(frozen=True)
class Tables:
    artefacts: str
    grants: str
    clients: str
    app: str


class Aws:
    """moto (in process, inside ``mock_aws``): instrumented clients, a KMS key, and fresh
    tables on demand (one set per test: moto's transactions copy whole tables, so small
    tables keep them fast)."""

    def __init__(self, faults: Faults) -> None:
        self.ddb = instrument(boto3.client("dynamodb", region_name="us-east-1"), "dynamodb", faults)
        self.kms = instrument(boto3.client("kms", region_name="us-east-1"), "kms", faults)
        self.key_id = self.kms.create_key()["KeyMetadata"]["KeyId"]
        self._sets = 0

    def tables(self) -> Tables:
        self._sets += 1
        tables = Tables(*(f"{name}-{self._sets}" for name in ("artefacts", "grants", "clients", "app")))
        for name in (tables.artefacts, tables.grants, tables.clients):
            self.ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        self.ddb.create_table(
            TableName=tables.app,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        now = int(time.time())
        record = public_client(client_id=PUBLIC_ID, expires_at=now + 86400, last_used_at=now)
        self.ddb.put_item(TableName=tables.clients, Item=client_item(record))
        return tables


Answer = dict[str, Any]


def event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> Answer:
    """An API Gateway HTTP API (payload 2.0) event, as the real handlers receive it."""
    hdrs = {"host": "mcp.example.com", **(headers or {})}
    if form is not None:
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "queryStringParameters": query or None,
        "headers": hdrs,
        "cookies": [cookie] if cookie else [],
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"}, "requestId": "r"},
        "body": urlencode(form) if form is not None else (body or ""),
        "isBase64Encoded": False,
    }


class Kit:
    """The authorization, token and MCP handlers, wired to instrumented dependencies."""

    def __init__(self, aws: Aws, faults: Faults) -> None:
        faults.arm(None)
        t = aws.tables()
        self.faults = faults
        self._remembered = False
        self.settings = facade_settings(kms_key_id=aws.key_id)
        self.cognito = SingleUseCognito()
        self.resolver = FakeResolver(public_client(client_id=PUBLIC_ID), confidential_client())
        self.grants = DynamoGrantRepository(t.grants, aws.ddb)
        self.rts = DynamoRefreshTokenRepository(t.grants, aws.ddb)
        jwks = FakeJwks([KEY.public_jwk])
        verifier = CognitoAccessTokenVerifier(
            self.settings, JwksCache(self.settings.jwks_url, min_refresh_seconds=60, fetcher=jwks)
        )
        common: dict[str, Any] = {
            "clients": Faulty(self.resolver, "clients", faults),
            "consents": DynamoConsentRepository(t.grants, aws.ddb),
            "cipher": KmsTokenCipher(aws.key_id, aws.kms),
            "cognito": Faulty(self.cognito, "cognito", faults),
            "verifier": Faulty(verifier, "jwks", faults),
        }
        authorization = AuthorizationService(
            self.settings,
            txns=DynamoPendingRequestRepository(t.artefacts, aws.ddb, grants_table=t.grants),
            secret=Faulty(StaticSecret(GATEWAY_SECRET), "cognito-idp", faults),
            **common,
        )
        token = TokenService(
            self.settings,
            codes=DynamoAuthorizationCodeRepository(t.artefacts, aws.ddb, grants_table=t.grants),
            grants=self.grants,
            refresh_tokens=self.rts,
            secret=Faulty(StaticSecret(GATEWAY_SECRET), "cognito-idp", faults),
            **common,
        )
        self.authorization = authorization_handler(lambda: authorization)
        self.token = token_handler(lambda: token)
        mcp = mcp_settings(grant_cache_seconds=0, app_tables={"notes": t.app})
        self.mcp_endpoint = create_endpoint(
            mcp,
            grants=DynamoGrantRepository(t.grants, aws.ddb),
            clients=DynamoRegisteredClients(t.clients, aws.ddb),
            register=lambda tools, _ctx: add_tools(tools, DynamoNotes(t.app, aws.ddb)),
            jwks=Faulty(JwksCache(mcp.jwks_url, min_refresh_seconds=60, fetcher=jwks), "jwks", faults),  # type: ignore[arg-type]
        )
        # One client for every request (the endpoint keeps no state between requests).
        self.mcp_client = TestClient(self.mcp_endpoint, base_url="https://mcp.example.com")

    # ------------------------------------------------------------------ requests
    def call(self, handler: Callable[[Answer, Any], Answer], ev: Answer) -> Answer:
        return handler(ev, FakeContext())

    def authorize_event(self, client_id: str = PUBLIC_ID, redirect_uri: str = PUBLIC_REDIRECT, **extra: str) -> Answer:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": "client-state",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "scope": "notes:read notes:write",
            "resource": self.settings.mcp_url,
            **extra,
        }
        return event("GET", "/authorize", query=query)

    def callback_event(self, started: Answer, code: str, state: str | None = None) -> Answer:
        cookie = started["cookies"][0].split(";")[0]
        upstream = query_of(started["headers"]["Location"])
        return event("GET", "/oauth/callback", query={"code": code, "state": state or upstream["state"]}, cookie=cookie)

    def consent_event(self, started: Answer, page: Answer, decision: str = "approve") -> Answer:
        cookie = started["cookies"][0].split(";")[0]
        csrf = page["body"].split('name=csrf value="')[1].split('"')[0]
        return event("POST", "/consent", form={"csrf": csrf, "decision": decision}, cookie=cookie)

    def token_event(self, form: dict[str, str], client_id: str = PUBLIC_ID) -> Answer:
        return event("POST", "/token", form={"client_id": client_id, **form})

    def code_event(self, code: str, client_id: str = PUBLIC_ID, redirect_uri: str = PUBLIC_REDIRECT) -> Answer:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self.token_event({**form, "code_verifier": VERIFIER}, client_id)

    def revoke_event(self, token: str, client_id: str = PUBLIC_ID) -> Answer:
        return event("POST", "/revoke", form={"token": token, "client_id": client_id})

    def mcp(self, access_token: str, method: str, params: dict[str, Any] | None = None) -> Any:
        message = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
        headers = {
            "authorization": "Bearer " + access_token,
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": "2025-11-25",
        }
        return self.mcp_client.post("/mcp", content=json.dumps(message), headers=headers)

    # ------------------------------------------------------------------ flows without faults
    def started(self, **kw: str) -> Answer:
        answer = self.call(self.authorization, self.authorize_event(**kw))
        assert answer["statusCode"] == 302, answer["body"]
        return answer

    def consent_page(self, **kw: str) -> tuple[Answer, Answer]:
        started = self.started(**kw)
        page = self.call(self.authorization, self.callback_event(started, "code-" + uuid.uuid4().hex))
        assert page["statusCode"] == 200, (page["body"], page["headers"].get("Location"))
        return started, page

    def code(self, **kw: str) -> str:
        started, page = self.consent_page(**kw)
        done = self.call(self.authorization, self.consent_event(started, page))
        assert done["statusCode"] == 302, done["body"]
        return query_of(done["headers"]["Location"])["code"]

    def tokens(self) -> dict[str, Any]:
        answer = self.call(self.token, self.code_event(self.code()))
        assert answer["statusCode"] == 200, answer["body"]
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    def remembered(self) -> Answer:
        """A confidential client with a remembered consent: the next sign-in skips the page."""
        conf = {"client_id": "conf-agent", "redirect_uri": CONF_REDIRECT}
        if not self._remembered:
            self.code(**conf)
            self._remembered = True
        return self.started(**conf)
