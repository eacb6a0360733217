"""Configuration of the local stack (``make dev``): ports and fixed names.

Every port can be overridden from the environment, so tests start the stack on free ports.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from functions.core.platform import kit_app, topology
from functions.core.platform.topology import TableSpec

REGION: Final = "us-east-1"
POOL_NAME: Final = "mcp-cognito-kit-local"
GATEWAY_CLIENT_NAME: Final = "mcp-kit-gateway"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
APP_CONTEXT_KEY: Final = "kit:app"
# Dummy credentials for moto; never real ones.
FAKE_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class DemoUser:
    email: str
    groups: tuple[str, ...]


def select_app(cdk_json: Path = REPO_ROOT / "cdk.json") -> Path:
    """The app ``make dev`` serves: ``KIT_APP_PATH`` if set, else cdk.json's ``kit:app``.

    A relative ``kit:app`` is relative to cdk.json's folder. The choice is exported as
    ``KIT_APP_PATH``, which the functions read (``functions.core.platform.kit_app``).
    """
    raw = os.environ.get(kit_app.APP_PATH_ENV, "").strip()
    if not raw:
        context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
        raw = context.get(APP_CONTEXT_KEY) or ""
        if not isinstance(raw, str) or not raw.strip():
            raise SystemExit(f"{cdk_json}: {APP_CONTEXT_KEY} must name the app folder")
    path = (cdk_json.parent / Path(raw).expanduser()).resolve()
    os.environ[kit_app.APP_PATH_ENV] = str(path)
    return path


def app_table_name(name: str) -> str:
    """The local DynamoDB table of the app's manifest table ``name``."""
    return f"mcp-kit-app-{name}"


def seconds_from_env(name: str, default: float, *, maximum: float) -> float:
    """The variable ``name`` as seconds in (0, ``maximum``] (``default`` when unset).

    Raises ``SystemExit`` naming the variable when it is malformed (nan and inf included).
    """
    raw = os.environ.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= maximum:  # also refuses nan and inf
        raise SystemExit(f"{name} must be a number of seconds in (0, {maximum:g}], got {raw!r}")
    return value


def table_name(spec: TableSpec) -> str:
    """The local DynamoDB table of a topology table (``topology.TABLES`` or an app table)."""
    return f"mcp-kit-{spec.key}" if spec.env else app_table_name(spec.key)


_KIT_TABLES: Final = {spec.key: table_name(spec) for spec in topology.TABLES}
GRANTS_TABLE: Final = _KIT_TABLES["grants"]
CLIENTS_TABLE: Final = _KIT_TABLES["clients"]
ARTEFACTS_TABLE: Final = _KIT_TABLES["artefacts"]


def scope_group_ceilings() -> dict[str, tuple[str, ...]]:
    """The app's default ceilings (the CDK stack's default too, unless kit:scopeGroupCeilings is set)."""
    return topology.scope_group_ceilings(kit_app.current())


def demo_users() -> tuple[DemoUser, ...]:
    """alice is in every group a ceiling names (she may grant everything), bob in none."""
    groups = topology.ceiling_groups(scope_group_ceilings())
    return (DemoUser("alice@example.com", groups), DemoUser("bob@example.com", ()))


@dataclass(frozen=True)
class LocalConfig:
    port: int = 8000
    moto_port: int = 8001
    cognito_port: int = 8002
    host: str = "localhost"
    # The local API Gateway's integration timeout (API Gateway HTTP API: 30 s at most).
    gateway_timeout_seconds: float = 30.0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def cognito_url(self) -> str:
        """The emulated Cognito domain (managed login + /oauth2 endpoints)."""
        return f"http://{self.host}:{self.cognito_port}"

    @classmethod
    def from_env(cls) -> LocalConfig:
        def port(name: str, default: int) -> int:
            raw = os.environ.get(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise SystemExit(f"{name} must be a TCP port number, got {raw!r}")
            return int(raw)

        timeout = seconds_from_env("GATEWAY_TIMEOUT_SECONDS", 30, maximum=30)
        return cls(
            port=port("PORT", 8000),
            moto_port=port("MOTO_PORT", 8001),
            cognito_port=port("COGNITO_PORT", 8002),
            gateway_timeout_seconds=timeout,
        )
