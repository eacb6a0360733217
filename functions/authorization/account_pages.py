"""HTML of the connected-agents page (``GET /account/agents``).

Built from the consent page's document, style and escaping (:mod:`functions.authorization.pages`):
same Content-Security-Policy (no script, no framing: ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY``, RFC 6749 section 10.13), same 390 px layout, client-supplied names
cleaned and isolated with ``<bdi>``. Forms post only to this site (``form-action 'self'``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Final, Literal

from functions.authorization.pages import _document, _name, _text, security_headers
from functions.core.platform.http import Answer
from functions.core.platform.routes import ACCOUNT_REVOKE_ALL_PATH, ACCOUNT_REVOKE_PATH

Notice = Literal["revoked", "revoked_all", "gone"]
# Fixed texts for the notice shown after a revocation (the query names one; nothing is reflected).
NOTICES: Final[Mapping[str, str]] = {
    "revoked": "Access revoked. The app can no longer act for you.",
    "revoked_all": "Access revoked for every app.",
    "gone": "That access had already ended.",
}


@dataclass(frozen=True)
class AgentView:
    """One active grant as the page shows it (times in epoch seconds, None when unknown)."""

    grant_id: str
    agent_name: str  # the client's self-declared name (unverified), or its id when it has none
    agent_id: str  # the client_id, or the CIMD document's host
    cimd: bool
    registered: bool  # False when the client's registration is gone
    scopes: tuple[tuple[str, str], ...]  # (name, description)
    granted_at: int
    last_used_at: int | None
    expires_at: int


def human_time(epoch: int | None) -> str:
    """``30 Nov 2026, 16:20 UTC`` for epoch seconds; ``never`` for None."""
    if epoch is None:
        return "never"
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(epoch))


def _agent(index: int, agent: AgentView, csrf: str) -> str:
    heading = f"agent-{index}"
    scopes = "".join(f"<li><code>{_text(name)}</code>: {_text(desc)}</li>" for name, desc in agent.scopes)
    where = "Web site" if agent.cimd else "App id"
    gone = "" if agent.registered else " <span class=tag>no longer registered</span>"
    return (
        f'<section class=box aria-labelledby={heading} data-grant="{escape(agent.grant_id)}">'
        f"<h2 id={heading}>{_name(agent.agent_name)} <span class=tag>unverified name</span></h2>"
        f"<p class=note>{where}: <code>{_name(agent.agent_id)}</code>{gone}</p>"
        f"<ul aria-label=Permissions>{scopes}</ul>"
        f"<p class=note>Granted {human_time(agent.granted_at)}<br>Last used {human_time(agent.last_used_at)}"
        f"<br>Expires {human_time(agent.expires_at)}</p>"
        f'<form method=post action="{escape(ACCOUNT_REVOKE_PATH)}">'
        f'<input type=hidden name=csrf value="{escape(csrf)}">'
        f'<input type=hidden name=grant_id value="{escape(agent.grant_id)}">'
        f"<div class=actions><button type=submit aria-describedby={heading}>Revoke access</button></div>"
        "</form></section>"
    )


def agents_page(*, server_name: str, user: str, agents: tuple[AgentView, ...], csrf: str, notice: str | None) -> Answer:
    """The list of the person's active grants, each with its revoke form, and a revoke-all form."""
    shown = NOTICES.get(notice or "")
    notice_html = f"<p class=note id=notice role=status>{escape(shown)}</p>" if shown else ""
    who = f"<p class=who>Signed in as <strong>{_name(user, 'user')}</strong></p>" if user else ""
    if agents:
        listing = "".join(_agent(i, agent, csrf) for i, agent in enumerate(agents, 1))
        revoke_all = (
            f'<form method=post action="{escape(ACCOUNT_REVOKE_ALL_PATH)}">'
            f'<input type=hidden name=csrf value="{escape(csrf)}">'
            "<div class=actions><button type=submit class=primary>Revoke access for every app</button></div>"
            "</form>"
        )
    else:
        listing, revoke_all = "<p id=empty>No app has access to your account.</p>", ""
    body = (
        f"<h1>Apps connected to your {_name(server_name, 'server')} account</h1>{who}{notice_html}"
        "<p class=note>Each app below can act for you with the permissions listed. Revoking ends its access "
        "within seconds; it must ask you again to get it back.</p>"
        f"<div id=agents>{listing}</div>{revoke_all}"
    )
    return Answer(200, _document("Connected apps", body), security_headers(("'self'",)))


def not_deployed_page() -> Answer:
    """503 without ``Retry-After``: this deployment has no ``by_user`` index yet (``kit:grantIndexes``).

    The page cannot list the person's grants, so it lists none rather than an empty, false
    "no app has access" (fail closed); nothing was changed. RFC 9110 section 15.6.4: 503 for
    a scheduled maintenance (the operator's upgrade); no retry delay is known.
    """
    body = (
        "<h1>Connected apps are not available yet</h1>"
        "<p class=error id=error role=alert>This server is being upgraded: the list of apps connected to your "
        "account is not deployed yet. Nothing was changed.</p>"
        "<h2>What to do</h2><p id=next>Try again later. To stop an app acting for you now, ask this server's "
        "administrators.</p>"
    )
    return Answer(503, _document("Not available yet", body), security_headers())
