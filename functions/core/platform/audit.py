"""The audit trail: one structured event per security-relevant action, with a fixed schema.

Each event is one log line of the function's Powertools logger (CloudWatch Logs, retention
``kit:logRetentionDays``) whose ``audit`` key holds the event, so a CloudWatch Logs Insights
query selects them with ``filter ispresent(audit.action)`` (README, "Audit"). Schema
version ``AUDIT_SCHEMA``; a field that does not apply is absent, never guessed:

=================  ======================================================================
``schema``         int, the schema version
``action``         one of :data:`AuditAction`
``outcome``        ``success``, ``denied`` (a rule refused it) or ``error`` (it failed)
``actor``          who caused it: ``user``, ``client``, ``admin``, ``system`` (reuse or
                   replay detection, deprovisioning, reconciliation)
``reason``         a short machine-readable reason (``refresh_reuse``, ``user_disabled``...)
``sub``            the Cognito user's ``sub``; ``username`` their Cognito username
``client_id``      the OAuth client (agent); ``client_name`` its self-declared, unverified name
``grant_id``       the grant (``origin_jti``) the action concerns
``scopes``         the kit scopes concerned, sorted
``tool``           the MCP tool name (``tool.called``); ``duration_ms`` its wall time (float)
=================  ======================================================================

Never a token, a secret, a code or a code verifier: the fields above are the only ones, and
the logger's redaction is the safety net (``observability.redact``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from functions.core.platform.observability import logger

AUDIT_SCHEMA: Final = 1

AuditAction = Literal[
    "authorization.granted",
    "authorization.denied",
    "token.issued",
    "token.refreshed",
    "token.revoked",
    "refresh.reuse_detected",
    "code.replay_detected",
    "client.registered",
    "client.updated",
    "client.deleted",
    "grant.revoked",
    "grant.narrowed",
    "tool.called",
]
Outcome = Literal["success", "denied", "error"]
Actor = Literal["user", "client", "admin", "system"]


def audit_event(
    action: AuditAction,
    *,
    outcome: Outcome = "success",
    actor: Actor | None = None,
    reason: str | None = None,
    sub: str | None = None,
    username: str | None = None,
    client_id: str | None = None,
    client_name: str | None = None,
    grant_id: str | None = None,
    scopes: Iterable[str] | None = None,
    tool: str | None = None,
    duration_ms: float | None = None,
) -> dict[str, Any]:
    """The audit event as a dict with the module's fixed schema (absent fields omitted)."""
    event: dict[str, Any] = {
        "schema": AUDIT_SCHEMA,
        "action": action,
        "outcome": outcome,
        "actor": actor,
        "reason": reason,
        "sub": sub,
        "username": username,
        "client_id": client_id,
        "client_name": client_name,
        "grant_id": grant_id,
        "scopes": sorted(scopes) if scopes is not None else None,
        "tool": tool,
        "duration_ms": round(duration_ms, 3) if duration_ms is not None else None,
    }
    return {k: v for k, v in event.items() if v is not None}


_PARTY: Final = ("sub", "username", "client_id", "grant_id")


def party_fields(subject: object) -> dict[str, str]:
    """``sub``, ``username``, ``client_id`` and ``grant_id`` of ``subject`` (a grant, an MCP
    principal, a pending authorization request): those it has as non-empty strings."""
    found = {name: getattr(subject, name, None) for name in _PARTY}
    return {name: value for name, value in found.items() if isinstance(value, str) and value}


def audit(action: AuditAction, **fields: Any) -> None:
    """Write one audit event (keyword arguments as :func:`audit_event`) at INFO."""
    logger.info(f"audit {action}", extra={"audit": audit_event(action, **fields)})
