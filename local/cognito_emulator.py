"""Emulator of Amazon Cognito's hosted OAuth endpoints, which moto lacks.

Serves ``/oauth2/authorize`` (+ ``/login``), ``/oauth2/token``, ``/oauth2/revoke`` and ``/logout``
with Cognito's parameters and error shapes, on top of a moto user pool read through plain boto3:
app clients, resource servers, users and groups come from moto on every request; passwords are
checked by moto (``AdminInitiateAuth``). Tokens are signed with the RSA key moto serves in its
JWKS (kid ``dummy``), so anything that verifies moto tokens verifies these.

State (codes, refresh sessions) lives in memory; codes and refresh tokens are kept only as
SHA-256 hashes. Nothing secret (passwords, codes, tokens) is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from jose import jwt
from moto.utilities.utils import load_resource
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from local.cognito_emulator_common import (
    AuthRequest,
    CodeGrant,
    ErrorPage,
    ErrorRedirect,
    OAuthError,
    Session,
    User,
    error_page,
    parse_basic,
    s256,
    same,
    sha256_hex,
    sign_in_page,
    single_values,
    validity_seconds,
    with_query,
)

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_cognito_idp.type_defs import UserPoolClientTypeTypeDef

logger = logging.getLogger(__name__)

CODE_TTL_SECONDS: Final = 300
_CLIENT_ID_RE: Final = re.compile(r"[\w+]{1,128}")
_S256_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER_RE: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_BAD_LOGIN: Final = "Incorrect username or password."
_FORWARDED: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
)


class CognitoEmulator:
    """The hosted endpoints of one user pool; state in memory, guarded by a lock."""

    def __init__(self, *, moto_url: str, region: str, user_pool_id: str, public_url: str) -> None:
        self.user_pool_id = user_pool_id
        self.public_url = public_url.rstrip("/")
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self._idp: CognitoIdentityProviderClient = boto3.client(
            "cognito-idp",
            endpoint_url=moto_url,
            region_name=region,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )
        self._key: dict[str, str] = load_resource("cognitoidp/resources/jwks-private.json")
        self._lock = threading.Lock()
        self._codes: dict[str, CodeGrant] = {}
        self._sessions: dict[str, Session] = {}  # sha256(refresh token) -> session

    # ---------------------------------------------------------------- moto look-ups
    def _client(self, client_id: str | None) -> UserPoolClientTypeTypeDef | None:
        if not client_id or not _CLIENT_ID_RE.fullmatch(client_id):
            return None
        try:
            resp = self._idp.describe_user_pool_client(UserPoolId=self.user_pool_id, ClientId=client_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return resp["UserPoolClient"]

    def _resource_servers(self) -> set[str]:
        resp = self._idp.list_resource_servers(UserPoolId=self.user_pool_id, MaxResults=50)
        return {rs["Identifier"] for rs in resp["ResourceServers"]}

    def _user(self, username: str) -> User | None:
        """The user's canonical name, sub, email and groups; None when unknown or disabled."""
        try:
            resp = self._idp.admin_get_user(UserPoolId=self.user_pool_id, Username=username)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
                return None
            raise
        if not resp.get("Enabled", True):
            return None
        attrs = {a["Name"]: a.get("Value", "") for a in resp.get("UserAttributes", [])}
        groups = self._idp.admin_list_groups_for_user(UserPoolId=self.user_pool_id, Username=resp["Username"])
        return User(
            username=resp["Username"],
            sub=attrs.get("sub", ""),
            email=attrs.get("email"),
            email_verified=attrs.get("email_verified", "false").lower() == "true",
            groups=tuple(g["GroupName"] for g in groups.get("Groups", [])),
        )

    # ---------------------------------------------------------------- /oauth2/authorize
    def validate(self, params: dict[str, str]) -> AuthRequest:
        """Cognito's checks of an authorization request; raises ErrorPage or ErrorRedirect."""
        client = self._client(params.get("client_id"))
        if client is None or not client.get("AllowedOAuthFlowsUserPoolClient"):
            raise ErrorPage("invalid_request")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.get("CallbackURLs", []):
            raise ErrorPage("redirect_mismatch")
        state = params.get("state")

        def fail(error: str) -> ErrorRedirect:
            return ErrorRedirect(redirect_uri, error, state)

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type")
        if "code" not in client.get("AllowedOAuthFlows", []):
            raise fail("unauthorized_client")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if (challenge is not None or method is not None) and (
            method != "S256" or not _S256_CHALLENGE_RE.fullmatch(challenge or "")
        ):
            raise fail("invalid_request")
        allowed = client.get("AllowedOAuthScopes", [])
        requested = tuple(dict.fromkeys(params.get("scope", "").split()))
        if not set(requested) <= set(allowed):
            raise fail("invalid_scope")
        resource = params.get("resource")
        if resource is not None:
            url = urlsplit(resource)
            if url.scheme not in ("http", "https") or not url.netloc or url.fragment or "#" in resource:
                raise fail("invalid_request")
            if resource not in self._resource_servers():
                raise fail("invalid_request")
        return AuthRequest(client["ClientId"], redirect_uri, state, requested or tuple(allowed), challenge, resource)

    def authorize_page(self, params: dict[str, str] | None) -> Response:
        if params is None:
            return error_page("invalid_request")
        try:
            return sign_in_page(self.public_url, self.validate(params))
        except ErrorPage as exc:
            return error_page(str(exc))
        except ErrorRedirect as exc:
            return exc.response()

    # ---------------------------------------------------------------- POST /login
    def login(self, form: dict[str, str] | None) -> Response:
        if form is None:
            return error_page("invalid_request")
        try:
            req = self.validate({k: v for k, v in form.items() if k in _FORWARDED})
        except ErrorPage as exc:
            return error_page(str(exc))
        except ErrorRedirect as exc:
            return exc.response()
        username, password = form.get("username", "").strip(), form.get("password", "")
        if not username or not password:
            return sign_in_page(self.public_url, req, error=_BAD_LOGIN, username=username)
        client = self._client(req.client_id)
        if client is None:
            return error_page("invalid_request")
        auth = {"USERNAME": username, "PASSWORD": password}
        if client.get("ClientSecret"):
            mac = hmac.new(client["ClientSecret"].encode(), (username + req.client_id).encode(), hashlib.sha256)
            auth["SECRET_HASH"] = base64.b64encode(mac.digest()).decode()
        try:
            result = self._idp.admin_initiate_auth(
                UserPoolId=self.user_pool_id,
                ClientId=req.client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters=auth,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NotAuthorizedException", "UserNotFoundException", "InvalidParameterException"):
                logger.info("sign-in failed for client %s: %s", req.client_id, code)
                return sign_in_page(self.public_url, req, error=_BAD_LOGIN, username=username)
            if code in ("UserNotConfirmedException", "PasswordResetRequiredException"):
                return sign_in_page(self.public_url, req, error="This account cannot sign in yet.", username=username)
            raise
        if "AuthenticationResult" not in result:
            challenge = result.get("ChallengeName", "a challenge")
            return sign_in_page(
                self.public_url, req, error=f"Sign-in needs {challenge}, which the emulator does not support."
            )
        user = self._user(username)
        if user is None:
            return sign_in_page(self.public_url, req, error=_BAD_LOGIN, username=username)
        refresh_seconds = validity_seconds(
            client.get("RefreshTokenValidity"),
            client.get("TokenValidityUnits", {}).get("RefreshToken"),
            "days",
            30 * 86400,
        )
        now = time.time()
        session = Session(
            client_id=req.client_id,
            username=user.username,
            scopes=req.scopes,
            resource=req.resource,
            origin_jti=str(uuid.uuid4()),
            event_id=str(uuid.uuid4()),
            auth_time=int(now),
            expires_at=now + refresh_seconds,
        )
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v.expires_at > now}
            self._codes[sha256_hex(code)] = CodeGrant(
                session, req.redirect_uri, req.code_challenge, now + CODE_TTL_SECONDS
            )
        return RedirectResponse(with_query(req.redirect_uri, {"code": code, "state": req.state}), 302)

    # ---------------------------------------------------------------- POST /oauth2/token, /oauth2/revoke
    def _authenticate(self, authorization: str | None, form: dict[str, str]) -> UserPoolClientTypeTypeDef:
        basic_id, basic_secret = parse_basic(authorization) if authorization else (None, None)
        form_id, form_secret = form.get("client_id"), form.get("client_secret")
        if basic_secret is not None and form_secret is not None:
            raise OAuthError("invalid_request")  # two client authentication methods
        if basic_id is not None and form_id is not None and not same(basic_id, form_id):
            raise OAuthError("invalid_client", 401)
        client = self._client(basic_id or form_id)
        if client is None:
            raise OAuthError("invalid_client", 401)
        given = basic_secret if basic_secret is not None else form_secret
        expected = client.get("ClientSecret")
        if expected and (given is None or not same(given, expected)):
            raise OAuthError("invalid_client", 401)
        if not expected and given:
            raise OAuthError("invalid_client", 401)
        return client

    def token(self, authorization: str | None, form: dict[str, str] | None) -> dict[str, Any]:
        if form is None:
            raise OAuthError("invalid_request")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type")
        client = self._authenticate(authorization, form)
        if not client.get("AllowedOAuthFlowsUserPoolClient"):
            raise OAuthError("unauthorized_client")
        if grant_type == "authorization_code":
            if "code" not in client.get("AllowedOAuthFlows", []):
                raise OAuthError("unauthorized_client")
            return self._code_grant(client, form)
        return self._refresh_grant(client, form)

    def _code_grant(self, client: UserPoolClientTypeTypeDef, form: dict[str, str]) -> dict[str, Any]:
        code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
        if not code or not redirect_uri:
            raise OAuthError("invalid_request")
        with self._lock:
            grant = self._codes.pop(sha256_hex(code), None)  # single use, even when checks below fail
        if grant is None or grant.expires_at <= time.time():
            raise OAuthError("invalid_grant")
        if not same(grant.session.client_id, client["ClientId"]) or grant.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant")
        if grant.code_challenge is not None:
            if not verifier or not _VERIFIER_RE.fullmatch(verifier) or not same(s256(verifier), grant.code_challenge):
                raise OAuthError("invalid_grant")
        elif verifier is not None:
            raise OAuthError("invalid_grant")  # a verifier for a request that had no challenge
        user = self._user(grant.session.username)
        if user is None:
            raise OAuthError("invalid_grant")
        refresh_token = secrets.token_urlsafe(48)
        with self._lock:
            now = time.time()
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires_at > now}
            self._sessions[sha256_hex(refresh_token)] = grant.session
        return {**self._tokens(client, grant.session, user), "refresh_token": refresh_token}

    def _refresh_grant(self, client: UserPoolClientTypeTypeDef, form: dict[str, str]) -> dict[str, Any]:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise OAuthError("invalid_request")
        with self._lock:
            session = self._sessions.get(sha256_hex(refresh_token))
        if session is None or session.expires_at <= time.time() or not same(session.client_id, client["ClientId"]):
            raise OAuthError("invalid_grant")
        user = self._user(session.username)
        if user is None:
            raise OAuthError("invalid_grant")
        return self._tokens(client, session, user)

    def _tokens(self, client: UserPoolClientTypeTypeDef, session: Session, user: User) -> dict[str, Any]:
        units = client.get("TokenValidityUnits", {})
        access_ttl = validity_seconds(client.get("AccessTokenValidity"), units.get("AccessToken"), "hours", 3600)
        id_ttl = validity_seconds(client.get("IdTokenValidity"), units.get("IdToken"), "hours", 3600)
        now = int(time.time())
        common: dict[str, Any] = {
            "sub": user.sub,
            "iss": self.issuer,
            "origin_jti": session.origin_jti,
            "event_id": session.event_id,
            "auth_time": session.auth_time,
            "iat": now,
        }
        if user.groups:
            common["cognito:groups"] = list(user.groups)
        access: dict[str, Any] = {
            **common,
            "client_id": session.client_id,
            "token_use": "access",
            "scope": " ".join(session.scopes),
            "exp": now + access_ttl,
            "jti": str(uuid.uuid4()),
            "username": user.username,
            "version": 2,
        }
        if session.resource is not None:
            access["aud"] = session.resource
        access_token = self._sign(access)
        body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": access_ttl}
        if "openid" in session.scopes:
            id_claims: dict[str, Any] = {
                **common,
                "aud": session.client_id,
                "token_use": "id",
                "cognito:username": user.username,
                "exp": now + id_ttl,
                "jti": str(uuid.uuid4()),
            }
            if user.email is not None:
                id_claims |= {"email": user.email, "email_verified": user.email_verified}
            body["id_token"] = self._sign(id_claims, access_token=access_token)
        return body

    def _sign(self, claims: dict[str, Any], access_token: str | None = None) -> str:
        headers = {"kid": self._key["kid"]}
        return str(jwt.encode(claims, self._key, algorithm="RS256", headers=headers, access_token=access_token))

    def revoke(self, authorization: str | None, form: dict[str, str] | None) -> None:
        if form is None or not form.get("token"):
            raise OAuthError("invalid_request")
        client = self._authenticate(authorization, form)
        token = form["token"]
        if token.count(".") == 2:
            raise OAuthError("unsupported_token_type")  # an access or ID token: Cognito revokes refresh tokens
        key = sha256_hex(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and not same(session.client_id, client["ClientId"]):
                raise OAuthError("unauthorized_client")
            self._sessions.pop(key, None)

    # ---------------------------------------------------------------- GET /logout
    def logout(self, params: dict[str, str] | None) -> Response:
        client = self._client((params or {}).get("client_id"))
        if params is None or client is None:
            return error_page("invalid_request")
        logout_uri = params.get("logout_uri")
        if logout_uri is not None:
            if logout_uri not in client.get("LogoutURLs", []):
                return error_page("redirect_mismatch")
            return RedirectResponse(logout_uri, 302)
        if params.get("redirect_uri") and params.get("response_type"):
            # Sign out, then sign in again: the emulator keeps no browser session, so go straight to the form.
            return RedirectResponse(with_query(f"{self.public_url}/oauth2/authorize", dict(params)), 302)
        return error_page("invalid_request")


async def _form_params(request: Request) -> dict[str, str] | None:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    form = await request.form()
    return single_values(form.multi_items())


def create_app(*, moto_url: str, region: str, user_pool_id: str, public_url: str) -> Starlette:
    """The emulated Cognito domain (served at ``public_url``) for ``user_pool_id`` in moto."""
    emu = CognitoEmulator(moto_url=moto_url, region=region, user_pool_id=user_pool_id, public_url=public_url)

    async def authorize(request: Request) -> Response:
        return await run_in_threadpool(emu.authorize_page, single_values(request.query_params.multi_items()))

    async def login(request: Request) -> Response:
        return await run_in_threadpool(emu.login, await _form_params(request))

    async def token(request: Request) -> Response:
        form = await _form_params(request)
        try:
            body = await run_in_threadpool(emu.token, request.headers.get("authorization"), form)
        except OAuthError as exc:
            return exc.response()
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def revoke(request: Request) -> Response:
        form = await _form_params(request)
        try:
            await run_in_threadpool(emu.revoke, request.headers.get("authorization"), form)
        except OAuthError as exc:
            return exc.response()
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def logout(request: Request) -> Response:
        return await run_in_threadpool(emu.logout, single_values(request.query_params.multi_items()))

    async def unavailable(request: Request, exc: Exception) -> Response:
        logger.warning("moto unavailable: %s", type(exc).__name__)
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503, headers={"Retry-After": "1"})

    routes = [
        Route("/oauth2/authorize", authorize, methods=["GET"]),
        Route("/login", authorize, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/revoke", revoke, methods=["POST"]),
        Route("/logout", logout, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ClientError: unavailable, BotoCoreError: unavailable})
    app.state.emulator = emu
    return app
