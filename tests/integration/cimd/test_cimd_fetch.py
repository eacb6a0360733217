"""Fetching Client ID Metadata Documents over real loopback sockets: TLS checked against the
URL's host name at the vetted address, size caps, and one deadline for the whole fetch
(a 0.3 s deadline against a stalled or byte-dripping server thread; no sleeps in the tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.cimd_fetch import (
    MAX_HEADER_BYTES,
    CimdError,
    CimdUnavailable,
    DocumentFetcher,
)
from functions.core.clients.resolver import make_client_resolver
from tests.cimd_support import fake_dns
from tests.integration.cimd.servers import Servers, facade_settings, loopback_resolver


def test_default_resolver_refuses_loopback_servers(servers: Servers) -> None:
    resolver = CimdResolver(DocumentFetcher(ca_file=servers.ca_file))  # INSECURE_CIMD_LOOPBACK off
    before = len(servers.https.requests)
    assert resolver.resolve(f"https://localhost:{servers.https.port}/client.json") is None
    assert len(servers.https.requests) == before


def test_real_fetch_from_loopback_https_server(servers: Servers) -> None:
    settings = facade_settings(servers)
    url = f"https://localhost:{servers.https.port}/client.json"
    record = make_client_resolver(settings).resolve(url)
    assert record is not None
    assert record.kind == "cimd"
    assert record.client_id == url
    assert record.is_public
    assert record.redirect_uris == ("http://127.0.0.1:33418/callback",)
    assert record.display_name == "CIMD Agent"
    assert record.metadata["client_id"] == url


def test_connects_to_the_vetted_address_and_checks_tls_name(servers: Servers) -> None:
    # "cimd.test" does not exist in DNS: success proves the fetch used the address we vetted.
    dns = fake_dns({"cimd.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    resolver = loopback_resolver(servers, getaddrinfo=dns)
    record, ttl = resolver.fetch(f"https://cimd.test:{servers.https.port}/client.json")
    assert record.client_name == "CIMD Agent"
    assert ttl == 600
    # The certificate does not name other.test: TLS verification uses the URL's host name.
    with pytest.raises(CimdError, match="TLS"):
        resolver.fetch(f"https://other.test:{servers.https.port}/client.json")


def test_untrusted_certificate_is_refused(servers: Servers) -> None:
    resolver = CimdResolver(DocumentFetcher(allow_loopback=True))  # default CA store only
    with pytest.raises(CimdError, match="TLS") as info:
        resolver.fetch(f"https://localhost:{servers.https.port}/client.json")
    # Definitive, not transient: a retry meets the same certificate (an unknown client).
    assert not isinstance(info.value, CimdUnavailable)
    assert resolver.resolve(f"https://localhost:{servers.https.port}/client.json") is None


def test_http_document_only_with_insecure_loopback(servers: Servers) -> None:
    url = f"http://localhost:{servers.http.port}/client.json"
    assert CimdResolver(DocumentFetcher(allow_loopback=True)).fetch(url)[0].client_id == url
    with pytest.raises(CimdError, match="https"):
        CimdResolver().fetch(url)


def test_size_cap(servers: Servers) -> None:
    resolver = loopback_resolver(servers)
    base = f"https://localhost:{servers.https.port}"
    assert resolver.fetch(base + "/exact.json")[0].client_name == "CIMD Agent"  # exactly 5 KB
    with pytest.raises(CimdError, match="larger"):
        resolver.fetch(base + "/big.json")  # refused on Content-Length
    with pytest.raises(CimdError, match="larger"):
        resolver.fetch(base + "/big-stream.json")  # no Content-Length: refused after 5 KB + 1


def test_timeout(servers: Servers) -> None:
    resolver = loopback_resolver(servers, timeout=0.3)
    with pytest.raises(CimdUnavailable, match="timed out"):  # transient: a 503 "retry", not unknown
        resolver.fetch(f"https://localhost:{servers.https.port}/stall.json")


def test_header_size_cap(servers: Servers) -> None:
    resolver = loopback_resolver(servers)
    base = f"https://localhost:{servers.https.port}"
    with pytest.raises(CimdError, match=f"headers are larger than {MAX_HEADER_BYTES}"):
        resolver.fetch(base + "/bigheaders.json")
    assert resolver.fetch(base + "/okheaders.json")[0].client_name == "CIMD Agent"


# ----- one deadline for the whole fetch -----------------------------------------------------

DEADLINE = 0.3
DRIP_INTERVAL = 0.05  # far below DEADLINE: a per-read timeout would never fire
DRIP_BYTES = 40  # the server gives up after ~2 s, so a regression fails instead of hanging


@contextmanager
def drip_server(prefix: bytes, drip: bytes) -> Iterator[int]:
    """A loopback TCP server: read the client's first bytes, send ``prefix``, then one byte
    of ``drip`` every DRIP_INTERVAL (up to DRIP_BYTES), until the client goes away."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)  # the request, or the TLS ClientHello
                conn.sendall(prefix)
                for _ in range(DRIP_BYTES):
                    if stop.wait(DRIP_INTERVAL):
                        return
                    conn.sendall(drip)
            except OSError:
                return  # the client hung up: that is the point

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.mark.parametrize(
    ("scheme", "path", "prefix", "drip"),
    [
        # A status line, then one header byte at a time.
        ("http", "/c.json", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ", b"a"),
        # Headers done, then a body that trickles in.
        (
            "http",
            "/c.json",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n",
            b" ",
        ),
        # A TLS record header announcing 16 KB of handshake, then one byte at a time.
        ("https", "/c.json", b"\x16\x03\x03\x40\x00", b"\x00"),
    ],
    ids=["headers", "body", "tls-handshake"],
)
def test_drip_feeding_server_is_cut_off_at_the_deadline(
    servers: Servers, scheme: str, path: str, prefix: bytes, drip: bytes
) -> None:
    resolver = loopback_resolver(servers, timeout=DEADLINE)
    with drip_server(prefix, drip) as port:
        started = time.monotonic()
        with pytest.raises(CimdUnavailable, match="timed out"):
            resolver.fetch(f"{scheme}://localhost:{port}{path}")
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE * 2
