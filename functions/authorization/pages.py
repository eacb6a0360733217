"""HTML of the authorization function: the consent page and error pages.

Every value that reaches the page (client metadata, user attributes, scope names) goes
through :func:`_text`: Unicode format characters (category Cf: bidi overrides, zero-width
characters) are dropped and the rest is escaped; client-supplied names are isolated with
``<bdi>`` so they cannot reorder the text around them. The pages load nothing: the one
inline style block is allowed by its hash, so the Content-Security-Policy is
``default-src 'none'`` and scripts cannot run at all.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from html import escape
from typing import Final
from urllib.parse import urlsplit

from functions.core.clients.records import ClientRecord
from functions.core.clients.redirect_uris import is_loopback_redirect
from functions.core.oauth import scopes as catalogue
from functions.core.platform.errors import RETRY_AFTER_SECONDS
from functions.core.platform.http import Answer
from functions.core.platform.metrics import count
from functions.core.platform.routes import ACCOUNT_AGENTS_PATH, CONSENT_PATH
from functions.core.platform.settings import FacadeSettings
from functions.core.state.pending_requests import PendingAuthorizationRequest

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#222;"
    "line-height:1.45;overflow-wrap:anywhere}"
    "h1{font-size:1.35rem;margin:.5rem 0 1rem}h2{font-size:1rem;margin:1.2rem 0 .4rem}"
    ".who,.note{color:#555}.note{font-size:.9rem}"
    ".box{border:1px solid #ccc;border-radius:.5rem;padding:0 .9rem;margin:.8rem 0}"
    "ul{padding-left:1.2rem}li{margin:.4rem 0}code{background:#f3f3f3;padding:0 .2rem;word-break:break-all}"
    ".tag{display:inline-block;font-size:.8rem;border:1px solid #8a5a00;color:#8a5a00;border-radius:.3rem;"
    "padding:0 .3rem}.warn{color:#8a5a00}.error{color:#b00}"
    ".actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1.5rem 0}"
    "button{font-size:1rem;padding:.7rem 1.4rem;border-radius:.4rem;border:1px solid #555;background:#fff;"
    "color:#222;flex:1 1 8rem}button.primary{background:#0b57d0;border-color:#0b57d0;color:#fff;font-weight:600}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+.-]{0,63}$")
_NETLOC: Final = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
RESTART: Final = "Go back to your app and start connecting again."


def _text(value: str) -> str:
    """Escaped text with Unicode format characters (category Cf) removed.

    Bidi overrides such as U+202E can make a name read backwards and zero-width characters
    hide differences; registration refuses them, but older records and CIMD documents cached
    before that may still hold them, so the page drops them again at render time.
    """
    return escape("".join(ch for ch in value if unicodedata.category(ch) != "Cf"))


def _name(value: str, element_id: str | None = None) -> str:
    """A client- or user-supplied name: cleaned, escaped and isolated with ``<bdi>``."""
    ident = f" id={element_id}" if element_id else ""
    return f"<bdi{ident}>{_text(value)}</bdi>"


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
        if not _NETLOC.match(parts.netloc):
            return None
        # CSP Level 3 host-source grammar has no IPv6 literals: a browser drops
        # "http://[::1]:33418" as invalid, and form-action would then block the redirect to
        # an RFC 8252 section 7.3 loopback URI. Only the scheme can name such a target.
        return f"{scheme}:" if parts.netloc.startswith("[") else f"{scheme}://{parts.netloc}"
    return f"{scheme}:"


def security_headers(form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    """Headers of every HTML page: CSP (no script, no framing), no caching, no referrer, no sniffing.

    ``form_targets`` are CSP source expressions the page's forms may submit (and redirect) to; none
    means ``form-action 'none'``. Frame-ancestors 'none' and X-Frame-Options DENY: RFC 6749 section 10.13.
    """
    form_action = " ".join(dict.fromkeys(["'self'", *form_targets])) if form_targets else "'none'"
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
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def error_page(status: int, message: str, *, next_step: str = RESTART, cookies: tuple[str, ...] = ()) -> Answer:
    """An error the browser must see here: never a redirect to an unverified URI (RFC 6749 s4.1.2.1).

    ``message`` says what happened, ``next_step`` what the person can do about it.
    """
    body = (
        "<h1>This sign-in cannot continue</h1>"
        f"<p class=error id=error role=alert>{escape(message)}</p>"
        f"<h2>What to do</h2><p id=next>{escape(next_step)}</p>"
    )
    return Answer(status, _document("Sign-in stopped", body), security_headers(), cookies)


def finished_page() -> Answer:
    """``GET /consent``, or the back button after a decision: nothing is pending in this browser."""
    body = (
        "<h1>Nothing to approve here</h1>"
        "<p id=error>This sign-in is already finished, or it was started in another browser.</p>"
        "<h2>What to do</h2><p id=next>If your app is still waiting, go back to it and start connecting "
        "again. Otherwise you can close this tab.</p>"
    )
    return Answer(400, _document("Nothing to approve", body), security_headers())


def _retry_page(what: str, next_step: str) -> Answer:
    """503 with ``Retry-After`` (seconds, RFC 9110 section 15.6.4): ``what`` failed, nothing was spent."""
    body = (
        f"<h1>Temporarily unavailable</h1><p id=error role=alert>{escape(what)}</p>"
        f"<h2>What to do</h2><p id=next>{escape(next_step)}</p>"
    )
    headers = {**security_headers(), "Retry-After": str(RETRY_AFTER_SECONDS)}
    return Answer(503, _document("Temporarily unavailable", body), headers)


def unavailable_page() -> Answer:
    """503 with ``Retry-After`` (seconds) for a dependency outage: nothing was spent, reloading is safe;
    counts ``DependencyUnavailable``."""
    count("DependencyUnavailable")
    return _retry_page(
        "A service the sign-in depends on is unavailable.",
        "Wait a minute, then reload this page or start again from your app.",
    )


def client_unavailable_page() -> Answer:
    """503 with ``Retry-After`` (seconds): the app's Client ID Metadata Document (its client_id URL)
    cannot be fetched for now (a timeout, its host down or busy). A page, never a redirect: the
    redirect URI is not verified without the document (RFC 6749 section 4.1.2.1). Nothing was
    stored or spent, reloading is safe. Counts ``ClientDocumentUnavailable``, not
    ``DependencyUnavailable``: the host is the app's, not the kit's."""
    count("ClientDocumentUnavailable")
    return _retry_page(
        "The app's information could not be fetched from its web site just now.",
        "Try again in a moment: reload this page, or start connecting again from your app.",
    )


@dataclass(frozen=True)
class ConsentView:
    """Everything the consent page shows, as plain text (escaped when rendered); built by :func:`consent_view`."""

    server_name: str  # KIT_RESOURCE_NAME
    server_host: str  # host of <B>
    agent_name: str
    agent_id: str  # the client_id, or the CIMD document's host
    agent_verified: bool  # True for a CIMD client (its id is an https URL the kit fetched)
    destination: str  # where the browser goes next, in plain words
    redirect_target: str | None  # CSP source of the redirect URI
    user: str
    scopes: tuple[tuple[str, str], ...]  # (name, description)
    withheld: tuple[str, ...]  # requested but beyond the user's group ceilings
    lifetime_days: int  # GRANT_LIFETIME_DAYS
    remembered: bool  # whether approving skips this page next time (RFC 8252 section 8.6)
    csrf_token: str


def consent_page(view: ConsentView) -> Answer:
    """200: the consent page for ``view`` with its approve/deny form (``csrf`` hidden field, ``POST /consent``).

    CSP ``form-action`` admits this site and the client's redirect target (``redirect_target``), else nothing.
    """
    scopes = "".join(f"<li><code>{_text(name)}</code>: {_text(desc)}</li>" for name, desc in view.scopes)
    withheld = ""
    if view.withheld:
        names = ", ".join(f"<code>{_text(s)}</code>" for s in view.withheld)
        withheld = f"<p class=warn>Not available to your account, so not granted: {names}</p>"
    if view.agent_verified:
        identity = (
            f"<p><strong>{_name(view.agent_name)}</strong><br>"
            "<span class=note>Its identity is the web site "
            f"<strong>{_name(view.agent_id, 'client')}</strong>.</span></p>"
        )
    else:
        identity = (
            f"<p><strong>{_name(view.agent_name)}</strong> <span class=tag>unverified</span><br>"
            "<span class=note>The app chose this name itself; the server cannot check it. "
            f"App id: <code>{_name(view.agent_id, 'client')}</code></span></p>"
        )
    remembered = (
        "Your decision is remembered: if this app asks again for the same access, you will not see this page."
        if view.remembered
        else "Your decision is not remembered: this kind of app cannot prove its identity, so you will be "
        "asked every time it connects."
    )
    server = _name(view.server_name, "server")
    body = (
        f"<h1>Allow {_name(view.agent_name, 'agent')} to use your {server} account?</h1>"
        f"<p class=who>Signed in to <strong>{_text(view.server_host)}</strong> as "
        f"<strong>{_name(view.user, 'user')}</strong></p>"
        "<section class=box aria-labelledby=h-app><h2 id=h-app>The app</h2>"
        f"{identity}"
        f"<p>After you decide, you will be sent to <strong id=redirect-host>{_text(view.destination)}</strong>.</p>"
        "</section>"
        "<section class=box aria-labelledby=h-scopes><h2 id=h-scopes>What it can do</h2>"
        f"<ul id=scopes>{scopes}</ul>{withheld}</section>"
        "<section class=box aria-labelledby=h-time><h2 id=h-time>For how long</h2>"
        f"<p id=lifetime>Access lasts up to {view.lifetime_days} days, unless it is revoked sooner.</p>"
        f"<p id=remembered>{remembered}</p>"
        "<p id=revoke>To end access sooner, revoke it on your "
        f'<a id=account-agents href="{escape(ACCOUNT_AGENTS_PATH)}">connected apps page</a>, disconnect or '
        "remove this server in the app (it revokes its access), or ask the administrator of this server.</p>"
        "</section>"
        f'<form method=post action="{escape(CONSENT_PATH)}" aria-label="Your decision">'
        f'<input type=hidden name=csrf value="{escape(view.csrf_token)}">'
        "<div class=actions><button type=submit class=primary name=decision value=approve>Approve</button>"
        "<button type=submit name=decision value=deny>Deny</button></div></form>"
    )
    targets = (view.redirect_target,) if view.redirect_target else ()
    return Answer(200, _document("Allow access?", body), security_headers(targets))


def destination(redirect_uri: str) -> str:
    """Where the browser is sent after the decision, in plain words (RFC 8252 section 7)."""
    parts = urlsplit(redirect_uri)
    if is_loopback_redirect(redirect_uri):
        return "an app on this computer"
    if parts.scheme.lower() == "https" and parts.hostname:
        return parts.hostname
    return f"the app registered for {parts.scheme.lower()}:"


def consent_view(
    settings: FacadeSettings, txn: PendingAuthorizationRequest, client: ClientRecord, csrf: str, *, remembered: bool
) -> ConsentView:
    """What the page shows: for a CIMD client, the document URL's host identifies the agent."""
    cimd = client.kind == "cimd"
    agent_id = (urlsplit(client.client_id).hostname or client.client_id) if cimd else client.client_id
    return ConsentView(
        server_name=settings.resource_name,
        server_host=urlsplit(settings.base_url).netloc,
        agent_name=client.client_name or agent_id,
        agent_id=agent_id,
        agent_verified=cimd,
        destination=destination(txn.redirect_uri),
        redirect_target=csp_source(txn.redirect_uri),
        user=txn.email or txn.username or txn.sub or "",
        scopes=tuple((s, _describe(s)) for s in txn.allowed_scopes),
        withheld=tuple(s for s in txn.scopes if s not in txn.allowed_scopes),
        lifetime_days=settings.grant_lifetime_days,
        remembered=remembered,
        csrf_token=csrf,
    )


def _describe(scope: str) -> str:
    found = catalogue.get_scope(scope)
    return found.description if found else scope
