"""The scope catalogue: every OAuth scope the kit serves, from the app's manifest.

The catalogue's one home is the app folder's ``app.json`` (``functions.core.platform.kit_app``). It
feeds the MCP function (each tool's scopes are checked against it at cold start), the
metadata documents (``scopes_supported``), the consent page (descriptions), the group
ceilings' defaults, the Cognito resource server in CDK and the local seeding. Loading it
imports neither the MCP SDK nor the app's tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from functions.core.platform import kit_app
from functions.core.platform.kit_app import ScopeDef

__all__ = [
    "GATEWAY_OIDC_SCOPES",
    "ScopeDef",
    "catalogue",
    "cognito_scope",
    "default_scopes",
    "get_scope",
    "kit_scopes_from_cognito",
    "order",
    "scope_names",
    "within_ceilings",
]

# What the kit asks Cognito for, as the gateway client, on top of the catalogue: an ID token
# with the email (OpenID Connect Core 1.0 section 5.4), so the consent page and whoami can name
# the user. The gateway client allows exactly these plus the catalogue, in AWS (infra/auth.py)
# and locally (local/seed.py).
GATEWAY_OIDC_SCOPES: Final[tuple[str, ...]] = ("openid", "email")


def catalogue() -> tuple[ScopeDef, ...]:
    """The app's scopes, in manifest order (loaded once per process; ``AppError`` if broken)."""
    return kit_app.current().scopes


def scope_names() -> tuple[str, ...]:
    """The catalogue's scope names, in manifest order."""
    return kit_app.current().scope_names


def default_scopes() -> tuple[str, ...]:
    """What a request without a catalogue scope asks for (RFC 6749 section 3.3 default)."""
    return tuple(s.name for s in catalogue() if s.default)


def get_scope(name: str) -> ScopeDef | None:
    """The catalogue entry named ``name``, or None."""
    return next((s for s in catalogue() if s.name == name), None)


def cognito_scope(resource_server_id: str, scope: str) -> str:
    """Cognito names custom scopes ``<resource-server-identifier>/<scope>``."""
    return f"{resource_server_id}/{scope}"


def kit_scopes_from_cognito(resource_server_id: str, token_scopes: Iterable[str]) -> frozenset[str]:
    """Strip the resource-server prefix; keep only catalogue scopes of *this* resource server.

    Scopes of other resource servers (or Cognito's own, such as ``openid`` or
    ``aws.cognito.signin.user.admin``) never become kit scopes: fail closed.
    """
    prefix = resource_server_id + "/"
    known = set(scope_names())
    return frozenset(
        raw[len(prefix) :] for raw in token_scopes if raw.startswith(prefix) and raw[len(prefix) :] in known
    )


def within_ceilings(
    scopes: Iterable[str], groups: Iterable[str], ceilings: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """The scopes a member of ``groups`` may hold: a scope with a ceiling needs one of its groups."""
    member = set(groups)
    return tuple(s for s in scopes if s not in ceilings or member & set(ceilings[s]))


def order(scopes: Iterable[str]) -> list[str]:
    """Catalogue order (unknown names dropped), for stable scope strings in headers and documents."""
    wanted = set(scopes)
    return [s for s in scope_names() if s in wanted]


def requested_scopes(raw: str | None, registered: str | None) -> tuple[str, ...]:
    """The catalogue scopes an authorization request asks for, in catalogue order (never empty).

    ``raw``: the request's ``scope`` parameter; ``registered``: the client's registered ``scope``.
    RFC 6749 section 3.3: the server may fully or partially ignore the requested scope.
    Values the kit does not serve (``offline_access``, ``openid``, ``profile``, ``email``,
    anything outside the catalogue) are ignored rather than refused; when none remain, the
    client's registered catalogue scopes, else the catalogue default, are requested. The
    registered ``scope`` (RFC 7591 section 2) is only that default, never a cap: the person's
    consent and the group ceilings bound what is granted, so a client can step up later.
    """
    wanted = order((raw or "").split())
    if not wanted and registered:
        wanted = order(registered.split())
    return tuple(wanted or default_scopes())
