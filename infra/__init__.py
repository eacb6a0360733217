"""CDK constructs and the stack of mcp-cognito-kit (no business logic)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final


def _kit_version() -> str:
    """The kit's semantic version, from pyproject.toml (its one home); see CHANGELOG.md."""
    with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


KIT_VERSION: Final = _kit_version()
