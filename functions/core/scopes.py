"""The scope catalogue: the one home of every OAuth scope the kit knows.

It feeds the MCP function (tool requirements are checked against it at cold start), the
metadata documents (``scopes_supported``), the consent page (descriptions), the Cognito
resource server in CDK and the local seeding. Which tool needs which scope is declared on
the tool itself (``functions.mcp_server.registry.scoped_tool``) and must name scopes from
here; ``tools`` below is the human-readable summary shown on the consent page, kept honest
by a test that compares it with the tool registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ScopeDef:
    name: str
    description: str
    tools: tuple[str, ...]
    # Requested when a client asks for no scope at all (RFC 6749 section 3.3 lets the
    # server apply a documented default).
    default: bool = True


TODOS_READ: Final = "todos:read"
TODOS_WRITE: Final = "todos:write"

CATALOGUE: Final[tuple[ScopeDef, ...]] = (
    ScopeDef(TODOS_READ, "Read your to-do list", tools=("list_todos",)),
    ScopeDef(TODOS_WRITE, "Add items to your to-do list and mark them done", tools=("add_todo", "complete_todo")),
)

# What the facade asks Cognito for on top of the catalogue: an ID token with the email, so
# the consent page and whoami can name the user. The gateway app client allows exactly
# these plus the catalogue, in AWS (infra/auth.py) and locally (local/seed.py).
UPSTREAM_OIDC_SCOPES: Final[tuple[str, ...]] = ("openid", "email")

SCOPE_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in CATALOGUE)
DEFAULT_SCOPES: Final[tuple[str, ...]] = tuple(s.name for s in CATALOGUE if s.default)
_BY_NAME: Final[dict[str, ScopeDef]] = {s.name: s for s in CATALOGUE}


def get_scope(name: str) -> ScopeDef | None:
    return _BY_NAME.get(name)


def cognito_scope(resource_server_id: str, scope: str) -> str:
    """Cognito names custom scopes ``<resource-server-identifier>/<scope>``."""
    return f"{resource_server_id}/{scope}"


def kit_scopes_from_cognito(resource_server_id: str, token_scopes: Iterable[str]) -> frozenset[str]:
    """Strip the resource-server prefix; keep only catalogue scopes of *this* resource server.

    Scopes of other resource servers (or Cognito's own, such as ``openid`` or
    ``aws.cognito.signin.user.admin``) never become kit scopes: fail closed.
    """
    prefix = resource_server_id + "/"
    found = set()
    for raw in token_scopes:
        if raw.startswith(prefix):
            name = raw[len(prefix) :]
            if name in _BY_NAME:
                found.add(name)
    return frozenset(found)


def within_ceilings(
    scopes: Iterable[str], groups: Iterable[str], ceilings: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """The scopes a member of ``groups`` may hold: a scope with a ceiling needs one of its groups."""
    member = set(groups)
    return tuple(s for s in scopes if s not in ceilings or member & set(ceilings[s]))


def order(scopes: Iterable[str]) -> list[str]:
    """Catalogue order, for stable scope strings in headers and documents."""
    wanted = set(scopes)
    return [s for s in SCOPE_NAMES if s in wanted]
