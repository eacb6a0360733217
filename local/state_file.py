"""Where ``make dev`` tells the admin CLI how to reach it: a small JSON file under build/.

The running stack writes the environment it gives the functions (table names, pool id, KMS
key id, Cognito domain; no secret) and the moto endpoint; ``mcp-kit-admin --local`` reads it.
``KIT_LOCAL_STATE`` names another file (tests run several stacks at once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from local.config import REPO_ROOT

STATE_ENV: Final = "KIT_LOCAL_STATE"
DEFAULT_STATE_FILE: Final = REPO_ROOT / "build" / "local-stack.json"


def state_path() -> Path:
    """``KIT_LOCAL_STATE`` if set, else build/local-stack.json in the repository."""
    raw = os.environ.get(STATE_ENV, "").strip()
    return Path(raw) if raw else DEFAULT_STATE_FILE


def write_state(environment: dict[str, str], endpoint_url: str) -> Path:
    """Write the running stack's function environment and AWS endpoint; returns the path."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"environment": environment, "endpoint_url": endpoint_url}, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def remove_state() -> None:
    """Forget the stack (it stopped): the CLI then says make dev is not running."""
    state_path().unlink(missing_ok=True)


def read_state() -> tuple[dict[str, str], str] | None:
    """``(environment, endpoint_url)`` of the running stack, or None when none is running."""
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return {str(k): str(v) for k, v in data["environment"].items()}, str(data["endpoint_url"])
