"""Lambda entry point of the deprovisioning function (no HTTP route).

Two EventBridge sources reach it (infra/deprovisioning.py):

* ``AWS API Call via CloudTrail`` from ``aws.cognito-idp``: one admin call on the pool
  (``Deprovisioner.handle_event``);
* ``Scheduled Event`` from ``aws.events``: the reconciliation backstop
  (``Deprovisioner.reconcile_all``).

A ``DependencyError`` propagates: the invocation fails and EventBridge retries it (every
step is idempotent). So does ``IndexNotDeployed`` (no ``by_user`` index, ``kit:grantIndexes``),
logged at ERROR first. Anything else is ignored, so a stray event changes nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from functions.core.platform import topology
from functions.core.platform.observability import logger
from functions.core.state.grant_index import IndexNotDeployed
from functions.core.state.management import ManagementPlane, management_plane
from functions.core.state.reconciliation import Reconciled

CLOUDTRAIL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
SCHEDULED_DETAIL_TYPE: Final = "Scheduled Event"

_settings = topology.DEPROVISIONING.load()


@cache
def _plane() -> ManagementPlane:
    return management_plane(_settings)


def dispatch(event: dict[str, Any], plane: ManagementPlane) -> Reconciled:
    """Route one EventBridge event to the deprovisioner; returns what it did (counts).

    Raises ``DependencyError`` (DynamoDB, KMS or Cognito failed; the retry finishes the rest).
    """
    detail_type = event.get("detail-type")
    if detail_type == CLOUDTRAIL_DETAIL_TYPE and event.get("source") == "aws.cognito-idp":
        return plane.deprovisioner.handle_event(event.get("detail") or {})
    if detail_type == SCHEDULED_DETAIL_TYPE and event.get("source") == "aws.events":
        return plane.deprovisioner.reconcile_all()
    logger.warning("event ignored", extra={"detail_type": str(detail_type)[:100]})
    return Reconciled()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge target: the counts of users looked up, grants revoked and narrowed.

    Raises ``DependencyError`` and ``IndexNotDeployed`` (the invocation fails; EventBridge retries).
    """
    try:
        done = dispatch(event, _plane())
    except IndexNotDeployed as exc:
        # Fail closed and loudly: the invocation fails (EventBridge retries it, the errors alarm fires).
        logger.error("deprovisioning cannot run", extra={"detail": str(exc)})
        raise
    logger.info("deprovisioning run", extra={"users": done.users, "revoked": done.revoked, "narrowed": done.narrowed})
    return {"users": done.users, "revoked": done.revoked, "narrowed": done.narrowed}
