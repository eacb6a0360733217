"""HTML of the authorization function: the consent page and error pages.

Every value that reaches the page (client metadata, user attributes, scope names) goes
through ``html.escape``; nothing from client metadata is rendered unescaped. The pages load
nothing: the one inline style block is allowed by its hash, so the Content-Security-Policy
is ``default-src 'none'`` and scripts cannot run at all.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from html import escape
from typing import Final
from urllib.parse import urlsplit

from functions.authorization.web import Answer
from functions.core import scopes as catalogue
from functions.core.artefacts import Txn
from functions.core.clients import ClientRecord
from functions.core.errors import RETRY_AFTER_SECONDS
from functions.core.routes import CONSENT_PATH

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.4rem}.who{color:#555}.box{border:1px solid #ccc;border-radius:.5rem;padding:1rem;margin:1rem 0}"
    "ul{padding-left:1.2rem}li{margin:.4rem 0}code{background:#f3f3f3;padding:0 .2rem;word-break:break-all}"
    ".warn{color:#8a5a00}.actions{display:flex;gap:1rem}button{font-size:1rem;padding:.5rem 1.2rem}"
    ".error{color:#b00}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+.-]{0,63}$")
_NETLOC: Final = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def csp_source(uri: str) -> str | None:
    """The CSP source expression of a redirect target, or None when it cannot be expressed safely.

    CSP Level 3 ``form-action`` also governs redirects that follow a form submission, so the
    consent form's policy must allow the client's redirect URI (origin, or scheme for a
    private-use URI scheme, RFC 8252 section 7.1).
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme):
        return None
    if scheme in ("http", "https"):
        return f"{scheme}://{parts.netloc}" if _NETLOC.match(parts.netloc) else None
    return f"{scheme}:"


def security_headers(form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    form_action = " ".join(["'self'", *form_targets]) if form_targets else "'none'"
    return {
        "Content-Type": "text/html; charset=utf-8",
        # Clickjacking defence for the consent decision (RFC 6749 section 10.13,
        # OAuth 2.1 section 7.7): never framed, by CSP and by the legacy header.
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def _document(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def error_page(status: int, message: str, *, cookies: tuple[str, ...] = ()) -> Answer:
    """An error the browser must see here: never a redirect to an unverified URI (RFC 6749 s4.1.2.1)."""
    body = f"<h1>This authorization request cannot continue</h1><p class=error id=error>{escape(message)}</p>"
    return Answer(status, _document("Authorization error", body), security_headers(), cookies)


def unavailable_page() -> Answer:
    body = "<h1>Temporarily unavailable</h1><p>A service the sign-in depends on is unavailable. Try again shortly.</p>"
    headers = {**security_headers(), "Retry-After": str(RETRY_AFTER_SECONDS)}
    return Answer(503, _document("Temporarily unavailable", body), headers)


@dataclass(frozen=True)
class ConsentView:
    agent_name: str
    agent_id: str  # the client_id, or the CIMD document's host
    agent_verified: bool  # True for a CIMD client (its id is an https URL the kit fetched)
    redirect_host: str
    redirect_target: str | None  # CSP source of the redirect URI
    user: str
    scopes: tuple[tuple[str, str], ...]  # (name, description)
    withheld: tuple[str, ...]  # requested but beyond the user's group ceilings
    csrf_token: str


def consent_page(view: ConsentView) -> Answer:
    scopes = "".join(f"<li><code>{escape(name)}</code>: {escape(desc)}</li>" for name, desc in view.scopes)
    withheld = ""
    if view.withheld:
        names = ", ".join(f"<code>{escape(s)}</code>" for s in view.withheld)
        withheld = f"<p class=warn>Not available to your account, so not granted: {names}</p>"
    origin_note = (
        "Its identity is the web address above."
        if view.agent_verified
        else "The name was chosen by the application itself and is not verified."
    )
    body = (
        f"<h1>Allow <span id=agent>{escape(view.agent_name)}</span> to access your account?</h1>"
        f"<p class=who>Signed in as <strong id=user>{escape(view.user)}</strong></p>"
        "<div class=box>"
        f"<p>Application: <code id=client>{escape(view.agent_id)}</code><br>{escape(origin_note)}</p>"
        f"<p>After you decide, you will be sent to <strong id=redirect-host>{escape(view.redirect_host)}</strong>.</p>"
        f"<p>It asks to:</p><ul id=scopes>{scopes}</ul>{withheld}</div>"
        f'<form method=post action="{escape(CONSENT_PATH)}">'
        f'<input type=hidden name=csrf value="{escape(view.csrf_token)}">'
        "<div class=actions><button type=submit name=decision value=approve>Approve</button>"
        "<button type=submit name=decision value=deny>Deny</button></div></form>"
    )
    targets = (view.redirect_target,) if view.redirect_target else ()
    return Answer(200, _document("Authorize application", body), security_headers(targets))


def consent_view(txn: Txn, client: ClientRecord, csrf: str) -> ConsentView:
    """What the page shows: for a CIMD client, the document URL's host identifies the agent."""
    cimd = client.kind == "cimd"
    agent_id = (urlsplit(client.client_id).hostname or client.client_id) if cimd else client.client_id
    redirect_parts = urlsplit(txn.redirect_uri)
    return ConsentView(
        agent_name=client.client_name or agent_id,
        agent_id=agent_id,
        agent_verified=cimd,
        redirect_host=redirect_parts.hostname or (redirect_parts.scheme + ":"),
        redirect_target=csp_source(txn.redirect_uri),
        user=txn.email or txn.username or txn.sub or "",
        scopes=tuple((s, _describe(s)) for s in txn.allowed_scopes),
        withheld=tuple(s for s in txn.scopes if s not in txn.allowed_scopes),
        csrf_token=csrf,
    )


def _describe(scope: str) -> str:
    found = catalogue.get_scope(scope)
    return found.description if found else scope
