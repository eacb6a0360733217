"""A moto server seeded exactly like `make dev`, with the functions' environment set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from moto.server import ThreadedMotoServer

from local.config import FAKE_CREDENTIALS, REGION, LocalConfig
from local.seed import Seeded, seed
from local.stack import function_environment


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
