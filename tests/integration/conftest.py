"""A moto server seeded exactly like `make dev`, with the functions' environment set; and, per test
module, the Cognito emulator on a loopback port and the facade's real handlers wired to both."""

from __future__ import annotations

import importlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from moto.server import ThreadedMotoServer

from functions.core.platform.settings import Env, FacadeSettings
from local.cognito_emulator import create_app
from local.config import FAKE_CREDENTIALS, REGION, LocalConfig
from local.seed import Seeded, seed
from local.stack import function_environment
from tests.facade_fakes import CONF_REDIRECT, FakeResolver, confidential_client, public_client
from tests.integration.facade_flow import CONF_OTHER_REDIRECT, Facade


@dataclass(frozen=True)
class MotoStack:
    cfg: LocalConfig
    seeded: Seeded
    env: dict[str, str]


@pytest.fixture(scope="session")
def moto_stack() -> Iterator[MotoStack]:
    saved = dict(os.environ)
    os.environ.update(FAKE_CREDENTIALS, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    # moto keeps one in-process store per process; start from (and leave) an empty one.
    httpx.post(f"http://127.0.0.1:{port}/moto-api/reset")
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    cfg = LocalConfig(moto_port=port)
    seeded = seed(cfg, "Integration-Passw0rd!")
    env = function_environment(cfg, seeded)
    env["GRANT_CACHE_SECONDS"] = "0"
    os.environ.update(env)
    try:
        yield MotoStack(cfg, seeded, env)
    finally:
        httpx.post(f"http://127.0.0.1:{port}/moto-api/reset")
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def emulator(moto_stack: MotoStack) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before the thread starts: no wait for readiness
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        moto_url=moto_stack.cfg.moto_url, region=REGION, user_pool_id=moto_stack.seeded.user_pool_id, public_url=url
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def facade(moto_stack: MotoStack, emulator: str) -> Facade:
    import functions.authorization.api as authorization_api
    import functions.authorization.handler as authorization_handler
    import functions.token.api as token_api
    import functions.token.handler as token_handler

    settings = FacadeSettings.from_env({**moto_stack.env, Env.COGNITO_DOMAIN_URL: emulator})
    resolver = FakeResolver(
        public_client(),
        public_client(client_id="other-agent"),
        public_client(client_id="read-agent", scope="notes:read"),
        confidential_client(),
        confidential_client(client_id="conf-two", redirect_uris=(CONF_REDIRECT, CONF_OTHER_REDIRECT)),
        confidential_client(client_id="conf-remembered"),
    )
    authorization = authorization_handler.build_service(settings, resolver)
    token = token_handler.build_service(settings, resolver)
    strict = token_handler.build_service(settings.model_copy(update={"refresh_reuse_grace_seconds": 0}), resolver)
    mcp = importlib.reload(importlib.import_module("functions.mcp_server.handler")).handler
    return Facade(
        moto_stack,
        settings,
        authorization_api.make_handler(lambda: authorization),
        token_api.make_handler(lambda: token),
        mcp,
        emulator,
        token_api.make_handler(lambda: strict),
    )
