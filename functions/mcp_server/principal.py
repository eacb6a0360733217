"""Who is calling: the authenticated principal of the current MCP request.

Set by the endpoint after token and grant checks, read by tools and by the tool-list
filter. A ``ContextVar`` is per request even when several requests share a process (the
local stack) and is copied into the tasks the MCP SDK spawns for the request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The caller of one MCP request, after the token and grant checks (``McpAuthenticator.authenticate``)."""

    sub: str
    username: str
    email: str
    client_id: str  # the OAuth client (agent) the user authorized
    gateway_client_id: str  # the Cognito app client that minted the token
    scopes: frozenset[str]  # effective: token scopes ∩ granted scopes, kit names
    grant_id: str


_current: ContextVar[Principal | None] = ContextVar("mcp_principal", default=None)


class NoPrincipal(RuntimeError):
    """Code that needs a caller ran outside an authenticated request."""


def current_principal() -> Principal:
    """The caller of the current request; raises :class:`NoPrincipal` outside an authenticated request."""
    principal = _current.get()
    if principal is None:
        raise NoPrincipal("no authenticated principal for this request")
    return principal


def bind(principal: Principal) -> object:
    """Make ``principal`` the caller of the current request; returns the token to :func:`unbind` with."""
    return _current.set(principal)


def unbind(token: object) -> None:
    """Restore the caller bound before the :func:`bind` that returned ``token`` (None at top level)."""
    _current.reset(token)  # type: ignore[arg-type]
