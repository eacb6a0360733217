"""Shared by the registration function's unit tests: events through the real router, an
in-memory store and rate limiter, and the metadata the tests register."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import RegistrationSettings
from functions.registration.api import make_handler
from functions.registration.service import RegistrationService
from local.gateway import build_event
from tests.fakes.clients import InMemoryClientStore
from tests.fakes.state import InMemoryRateLimiter
from tests.helpers import BASE_URL, FakeContext
from tests.unit.metadata_docs import meta

PUBLIC: dict[str, Any] = meta(scope="notes:read")
CONFIDENTIAL: dict[str, Any] = {**PUBLIC, "token_endpoint_auth_method": "client_secret_post"}


def event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    template = "/register/{client_id}" if path.startswith("/register/") else path
    route = next(r for r in ROUTES if r.method == method and r.path == template)
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = {"content-type": "application/json", **(headers or {})}
    params = {"client_id": path.rsplit("/", 1)[1]} if template != path else None
    return build_event(
        method=method,
        path=path,
        raw_query="",
        headers=list(hdrs.items()),
        body=raw,
        route=route,
        params=params,
        source_ip=source_ip,
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


class Kit:
    def __init__(self, **settings: Any) -> None:
        values: dict[str, Any] = {"base_url": BASE_URL, "clients_table": "clients", "artefacts_table": "artefacts"}
        values.update(settings)
        self.settings = RegistrationSettings(**values)
        self.now = 1_800_000_000.0
        self.store = InMemoryClientStore(idle_days=self.settings.client_idle_days)
        self.limiter = InMemoryRateLimiter(clock=lambda: self.now)
        self.service = RegistrationService(self.settings, self.store, self.limiter, clock=lambda: self.now)
        self.app = make_handler(lambda: self.service)

    def call(self, method: str, path: str, **kw: Any) -> Reply:
        result = self.app(event(method, path, **kw), FakeContext())
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for k, values in (result.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = ",".join(values)
        return Reply(int(result["statusCode"]), headers, str(result.get("body") or ""))

    def register(self, body: Any, **kw: Any) -> Reply:
        return self.call("POST", "/register", body=body, **kw)

    def manage(self, method: str, client_id: str, token: str | None, body: Any = None) -> Reply:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return self.call(method, f"/register/{client_id}", headers=headers, body=body)

    def client_items(self) -> list[dict[str, Any]]:
        return [v for k, v in self.store.items.items() if k.startswith(CLIENT_PREFIX)]


def assert_nothing_stored(kit: Kit) -> None:
    assert kit.store.items == {}
