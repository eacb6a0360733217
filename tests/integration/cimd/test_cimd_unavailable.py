"""A document host that is down or busy, over real loopback sockets: every transient kind is
``CimdUnavailable`` (a 503 "retry" at /token and /authorize), never an unknown client; a
certificate that does not verify stays a refusal (tests/integration/cimd/test_cimd_fetch.py)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from functions.core.clients.cimd_fetch import CimdUnavailable
from tests.integration.cimd.servers import Servers, loopback_resolver


@contextmanager
def hanging_up(read_first: bool, reset: bool) -> Iterator[int]:
    """A loopback TCP server that takes one connection and hangs up: after reading the first
    bytes (the request or the TLS ClientHello) when ``read_first``, with an RST when ``reset``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)  # bounds a regression; the client connects at once

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            if read_first:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    return
            if reset:  # SO_LINGER 0: close with RST instead of FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        thread.join(3)
        listener.close()


def test_connection_refused_is_unavailable(servers: Servers) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])  # closed when the block ends: nothing listens there
    with pytest.raises(CimdUnavailable, match="unreachable"):
        loopback_resolver(servers).resolve(f"https://localhost:{port}/client.json")


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_tls_handshake_cut_off_is_unavailable(servers: Servers, reset: bool) -> None:
    with hanging_up(read_first=True, reset=reset) as port, pytest.raises(CimdUnavailable):
        loopback_resolver(servers).resolve(f"https://localhost:{port}/client.json")


def test_a_connection_reset_before_the_answer_is_unavailable(servers: Servers) -> None:
    with hanging_up(read_first=True, reset=True) as port, pytest.raises(CimdUnavailable):
        loopback_resolver(servers).resolve(f"http://localhost:{port}/client.json")


def test_a_connection_closed_before_the_answer_is_unavailable(servers: Servers) -> None:
    # http.client's RemoteDisconnected is a ConnectionResetError: the server went away.
    with hanging_up(read_first=True, reset=False) as port, pytest.raises(CimdUnavailable):
        loopback_resolver(servers).resolve(f"http://localhost:{port}/client.json")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_busy_or_failing_host_is_unavailable(servers: Servers, status: int) -> None:
    url = f"https://localhost:{servers.https.port}/status/{status}"
    with pytest.raises(CimdUnavailable, match=f"HTTP {status}"):
        loopback_resolver(servers).resolve(url)


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_a_client_error_status_stays_an_unknown_client(servers: Servers, status: int) -> None:
    assert loopback_resolver(servers).resolve(f"https://localhost:{servers.https.port}/status/{status}") is None
