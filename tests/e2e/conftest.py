"""Start `python -m local` (what `make dev` runs) on free loopback ports."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.config import LocalConfig
from local.stack import READY_LINE
from tests.e2e.oauth_harness import CimdServer, make_loopback_cert

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
    state_file: Path  # where the stack tells mcp-kit-admin --local how to reach it (KIT_LOCAL_STATE)


def _drain(proc: subprocess.Popen[str], output: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)


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
            # Keep reading the child's output for the rest of its life: a full pipe would
            # block the stack's next write (and with it, a request or its shutdown).
            threading.Thread(target=_drain, args=(proc, output), daemon=True).start()
            return
    proc.kill()
    raise RuntimeError("local stack did not start:\n" + "".join(output))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway certificate for the loopback CIMD server, trusted by the stack under test."""
    return make_loopback_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def cimd_server(tls_files: tuple[Path, Path]) -> Iterator[CimdServer]:
    server = CimdServer(*tls_files)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def stack(tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    """One stack shared by the e2e tests."""
    yield from _run_stack(tls_files)


@pytest.fixture
def own_stack(tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    """A stack of its own, for a test that stops it."""
    yield from _run_stack(tls_files)


def run_stack(tls_files: tuple[Path, Path], **settings: str) -> Iterator[RunningStack]:
    """`python -m local` on free ports; ``settings`` are extra environment (e.g. REGISTRATION_POLICY)."""
    yield from _run_stack(tls_files, settings)


def _run_stack(tls_files: tuple[Path, Path], settings: dict[str, str] | None = None) -> Iterator[RunningStack]:
    cfg = LocalConfig(port=free_port(), moto_port=free_port(), cognito_port=free_port())
    state_file = Path(tempfile.mkdtemp(prefix="kit-local-")) / "local-stack.json"
    env = {
        **os.environ,
        "PORT": str(cfg.port),
        "MOTO_PORT": str(cfg.moto_port),
        "COGNITO_PORT": str(cfg.cognito_port),
        "DEMO_PASSWORD": PASSWORD,
        # Revocation must bite at once in this test; the TTL itself is unit-tested.
        "GRANT_CACHE_SECONDS": "0",
        # Strict refresh rotation, so the flow can show reuse detection; the grace is unit-tested.
        "REFRESH_REUSE_GRACE_SECONDS": "0",
        # INSECURE, test only: Client ID Metadata Documents from the loopback HTTPS server.
        "INSECURE_CIMD_LOOPBACK": "true",
        "CIMD_CA_FILE": str(tls_files[0]),
        "PYTHONUNBUFFERED": "1",
        "KIT_LOCAL_STATE": str(state_file),
        **(settings or {}),
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
    running = RunningStack(cfg, proc, output, state_file)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("local stack did not stop on SIGINT:\n" + "".join(output[-40:])) from None
