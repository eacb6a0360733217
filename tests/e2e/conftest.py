"""Start `python -m local` (what `make dev` runs) on free loopback ports."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from local.config import LocalConfig
from local.stack import READY_LINE

PASSWORD = "E2e-Passw0rd!"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningStack:
    cfg: LocalConfig
    process: subprocess.Popen[str]
    output: list[str]


def _wait_ready(proc: subprocess.Popen[str], output: list[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        # Block on the child's output (not a sleep): the ready line is printed after every
        # server accepts connections.
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if READY_LINE in line:
            return
    proc.kill()
    raise RuntimeError("local stack did not start:\n" + "".join(output))


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    cfg = LocalConfig(port=free_port(), moto_port=free_port(), cognito_port=free_port())
    env = {
        **os.environ,
        "PORT": str(cfg.port),
        "MOTO_PORT": str(cfg.moto_port),
        "COGNITO_PORT": str(cfg.cognito_port),
        "DEMO_PASSWORD": PASSWORD,
        # Revocation must bite at once in this test; the TTL itself is unit-tested.
        "GRANT_CACHE_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    _wait_ready(proc, output)
    running = RunningStack(cfg, proc, output)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
