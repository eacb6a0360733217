"""Shared pieces of the Cognito emulator: OAuth errors, records, small helpers and HTML pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlencode

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

UNIT_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
HTML_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class OAuthError(Exception):
    """An error of the token or revocation endpoint: ``{"error": ...}`` with 400 (401 for client auth)."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.status = error, status

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="cognito"'
        return JSONResponse({"error": self.error}, status_code=self.status, headers=headers)


class ErrorPage(Exception):
    """A request that must not be redirected back (unknown client, redirect_mismatch)."""


class ErrorRedirect(Exception):
    def __init__(self, redirect_uri: str, error: str, state: str | None) -> None:
        super().__init__(error)
        self.redirect_uri, self.error, self.state = redirect_uri, error, state

    def response(self) -> RedirectResponse:
        return RedirectResponse(with_query(self.redirect_uri, {"error": self.error, "state": self.state}), 302)


@dataclass(frozen=True)
class AuthRequest:
    client_id: str
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    code_challenge: str | None
    resource: str | None


@dataclass(frozen=True)
class Session:
    """One sign-in: what its codes and refresh token are bound to."""

    client_id: str
    username: str
    scopes: tuple[str, ...]
    resource: str | None
    origin_jti: str
    event_id: str
    auth_time: int
    expires_at: float  # of the refresh token


@dataclass(frozen=True)
class CodeGrant:
    session: Session
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


@dataclass(frozen=True)
class User:
    username: str
    sub: str
    email: str | None
    email_verified: bool
    groups: tuple[str, ...]


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def single_values(items: Iterable[tuple[str, Any]]) -> dict[str, str] | None:
    """Request parameters as a dict, or None when one is repeated or not text (RFC 6749 §3.1)."""
    out: dict[str, str] = {}
    for key, value in items:
        if key in out or not isinstance(value, str):
            return None
        out[key] = value
    return out


def with_query(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def validity_seconds(value: int | None, unit: str | None, default_unit: str, default_seconds: int) -> int:
    if not value:
        return default_seconds
    return int(value) * UNIT_SECONDS.get(unit or default_unit, UNIT_SECONDS[default_unit])


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:24rem;margin:2rem auto;padding:0 1rem;line-height:1.4}"
    "label,input,button{display:block;width:100%;box-sizing:border-box;margin:.3rem 0}"
    "input{font-size:1rem;padding:.6rem}button{font-size:1rem;padding:.7rem;margin-top:1rem}"
    ".error{color:#b00}.note{color:#555;font-size:.9rem}"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=HTML_HEADERS)


def error_page(error: str) -> HTMLResponse:
    body = (
        "<h1>An error was encountered with the requested page.</h1>"
        f"<p class=error id=error role=alert>{html.escape(error)}</p>"
        "<p class=note>Start again from the app you were connecting.</p>"
    )
    return page("Error", body, status=400)


def sign_in_page(public_url: str, req: AuthRequest, *, error: str | None = None, username: str = "") -> HTMLResponse:
    hidden = {
        "response_type": "code",
        "client_id": req.client_id,
        "redirect_uri": req.redirect_uri,
        "state": req.state,
        "scope": " ".join(req.scopes),
        "code_challenge": req.code_challenge,
        "code_challenge_method": "S256" if req.code_challenge else None,
        "resource": req.resource,
    }
    fields = "".join(
        f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
        if v is not None
    )
    message = f"<p class=error id=error role=alert>{html.escape(error)}</p>" if error else ""
    body = (
        f"<h1>Sign in</h1><p class=note>Local Cognito emulator (make dev)</p>{message}"
        f'<form method=post action="{html.escape(public_url)}/login" aria-label="Sign in">'
        f"{fields}<label for=username>Username</label>"
        f'<input id=username name=username autocomplete=username required value="{html.escape(username)}">'
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<button type=submit>Sign in</button></form>"
    )
    return page("Sign in", body)


def parse_basic(authorization: str) -> tuple[str, str]:
    """client_secret_basic credentials (RFC 6749 §2.3.1); OAuthError invalid_client when malformed."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_client", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", 401)
    return unquote(client_id), unquote(secret)
