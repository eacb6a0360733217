"""Configuration of the local stack (``make dev``): ports and fixed names.

Every port can be overridden from the environment, so tests start the stack on free ports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

REGION: Final = "us-east-1"
POOL_NAME: Final = "mcp-cognito-kit-local"
GATEWAY_CLIENT_NAME: Final = "mcp-kit-gateway"
GRANTS_TABLE: Final = "mcp-kit-grants"
APP_TABLE: Final = "mcp-kit-app"
CLIENTS_TABLE: Final = "mcp-kit-clients"
ARTEFACTS_TABLE: Final = "mcp-kit-artefacts"
# Demo policy: only editors may grant write access (the CDK stack uses the same default).
SCOPE_GROUP_CEILINGS: Final = '{"todos:write": ["editors"]}'

EDITORS_GROUP: Final = "editors"
# Dummy credentials for moto; never real ones.
FAKE_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class DemoUser:
    email: str
    groups: tuple[str, ...]


DEMO_USERS: Final = (
    DemoUser("alice@example.com", (EDITORS_GROUP,)),
    DemoUser("bob@example.com", ()),
)


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

        raw_timeout = os.environ.get("GATEWAY_TIMEOUT_SECONDS", "30")
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = 0.0
        if not 0 < timeout <= 30:  # also refuses nan and inf
            raise SystemExit(f"GATEWAY_TIMEOUT_SECONDS must be a number of seconds in (0, 30], got {raw_timeout!r}")
        return cls(
            port=port("PORT", 8000),
            moto_port=port("MOTO_PORT", 8001),
            cognito_port=port("COGNITO_PORT", 8002),
            gateway_timeout_seconds=timeout,
        )
