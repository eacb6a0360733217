"""The fetcher's address rules (SSRF): every resolved address must be public, a refused one is
never connected to, and a stuck DNS lookup is cut off at the deadline (scripted
``getaddrinfo``; the one wait is on an Event the test releases)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.cimd_fetch import (
    DNS_WORKERS,
    CimdError,
    CimdUnavailable,
    DocumentFetcher,
    resolve_public,
    vet_address,
)
from tests.cimd_support import fake_dns

# ----- address vetting --------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.8.8",
        "::1",
        "169.254.169.254",  # cloud metadata (IMDS)
        "169.254.170.2",  # ECS task credentials
        "fd00:ec2::254",  # IMDS over IPv6
        "169.254.1.1",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "::",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "240.0.0.1",  # reserved
        "192.0.2.1",  # documentation
        "fc00::1",  # unique local
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(CimdError):
        vet_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert vet_address(address) == address


def test_insecure_loopback_admits_only_loopback() -> None:
    assert vet_address("127.0.0.1", allow_loopback=True) == "127.0.0.1"
    assert vet_address("::1", allow_loopback=True) == "::1"
    for address in ("10.0.0.1", "169.254.169.254", "fd00:ec2::254", "192.168.0.1"):
        with pytest.raises(CimdError):
            vet_address(address, allow_loopback=True)


def test_every_resolved_address_must_be_public() -> None:
    dns = fake_dns({"mixed.example": ["93.184.216.34", "10.0.0.7"], "ok.example": ["93.184.216.34"]})
    with pytest.raises(CimdError, match="non-public"):
        resolve_public("mixed.example", 443, dns, allow_loopback=False)
    assert resolve_public("ok.example", 443, dns, allow_loopback=False) == ["93.184.216.34"]
    with pytest.raises(CimdError, match="resolve"):
        resolve_public("nx.example", 443, dns, allow_loopback=False)


def test_a_refused_address_is_never_connected_to() -> None:
    dns = fake_dns({"meta.example": ["169.254.169.254"]})
    resolver = CimdResolver(DocumentFetcher(getaddrinfo=dns))
    with pytest.raises(CimdError, match="metadata"):
        resolver.fetch("https://meta.example/client.json")
    assert resolver.fetcher.fetches == 0
    assert dns.calls == ["meta.example"]


DEADLINE = 0.3


def slow_dns(release: threading.Event) -> Any:
    started: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        started.append(host)
        release.wait(3)  # released by the test; the bound keeps a regression from hanging
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    getaddrinfo.started = started  # type: ignore[attr-defined]
    return getaddrinfo


def test_slow_dns_is_cut_off_at_the_deadline() -> None:
    release = threading.Event()
    dns = slow_dns(release)
    resolver = CimdResolver(DocumentFetcher(getaddrinfo=dns, timeout=DEADLINE))
    try:
        started = time.monotonic()
        with pytest.raises(CimdUnavailable, match="lookup timed out"):
            resolver.fetch("https://slow.example/client.json")
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < DEADLINE * 2
    assert dns.started == ["slow.example"]
    assert resolver.fetcher.fetches == 0  # nothing was connected to


def test_stuck_lookups_do_not_pile_up_threads() -> None:
    release = threading.Event()
    dns = slow_dns(release)
    resolver = CimdResolver(DocumentFetcher(getaddrinfo=dns, timeout=0.05))
    try:
        started = time.monotonic()
        for i in range(DNS_WORKERS + 2):
            with pytest.raises(CimdUnavailable, match="lookup timed out"):
                resolver.fetch(f"https://slow{i}.example/client.json")
        elapsed = time.monotonic() - started
        # Only DNS_WORKERS lookups ever started; the rest timed out in the queue.
        assert len(dns.started) == DNS_WORKERS
    finally:
        release.set()
    assert elapsed < 0.05 * (DNS_WORKERS + 2) * 2
