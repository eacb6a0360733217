"""The deprovisioning backstop of ``make dev``: the same reconciliation as in AWS, every few seconds.

Locally there is no CloudTrail and no EventBridge, so a change made in the pool (with boto3
against the moto server, or ``mcp-kit-admin --local``) reaches the grants through
``Deprovisioner.reconcile_all`` run on a timer: a disabled, deleted or regrouped user's
grants agree with the pool within ``DEPROVISION_POLL_SECONDS`` (default 3), and ``/mcp``
follows within ``GRANT_CACHE_SECONDS`` more (README, "Deprovisioning").
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from functions.core.platform.errors import DependencyError
from functions.core.platform.settings import ManagementSettings
from functions.core.state.management import management_plane
from local.config import seconds_from_env

POLL_ENV: Final = "DEPROVISION_POLL_SECONDS"
DEFAULT_POLL_SECONDS: Final = 3.0
log = logging.getLogger("mcp-cognito-kit.poller")


def poll_seconds() -> float:
    """``DEPROVISION_POLL_SECONDS`` (seconds, in (0, 60]); ``SystemExit`` naming it when malformed."""
    return seconds_from_env(POLL_ENV, DEFAULT_POLL_SECONDS, maximum=60)


class DeprovisioningPoller:
    """A daemon thread running one reconciliation per interval until :meth:`stop`."""

    def __init__(self, settings: ManagementSettings, interval_seconds: float) -> None:
        self._plane = management_plane(settings)
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deprovisioning", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._plane.deprovisioner.reconcile_all()
            except DependencyError as exc:  # moto restarting or the stack stopping: next round
                log.warning("reconciliation failed: %s", exc)
