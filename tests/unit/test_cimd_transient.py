"""Client ID Metadata Documents that cannot be fetched: transient failures (``CimdUnavailable``,
answered 503 "retry") versus refusals (``CimdError``, an unknown client), through the real
``DocumentFetcher`` over a ``socketpair`` (no traffic), and how each is cached and counted."""

from __future__ import annotations

import errno
import json
import socket
import ssl

import pytest

from functions.core.clients import cimd_fetch
from functions.core.clients.cimd import (
    FAILURE_CACHE_SECONDS,
    UNAVAILABLE_CACHE_SECONDS,
    CimdResolver,
    transient_status,
)
from functions.core.clients.cimd_fetch import (
    CimdError,
    CimdUnavailable,
    DocumentFetcher,
    resolve_public,
    transient_os_error,
)
from functions.core.clients.resolver import KitClientResolver
from functions.core.platform.errors import RETRY_AFTER_SECONDS
from tests.cimd_support import URL, FakeNetwork, document, http_answer
from tests.facade_fakes import Facade
from tests.fakes.clients import InMemoryClientStore
from tests.observability_capture import Captured


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolver(net: FakeNetwork, clock: Clock | None = None) -> CimdResolver:
    fetcher = DocumentFetcher(allow_loopback=True, getaddrinfo=net.getaddrinfo)
    return CimdResolver(fetcher, clock=clock or Clock())


def document_facade(net: FakeNetwork) -> Facade:
    """A facade whose clients resolve as in production: ``KitClientResolver``, CIMD through the real
    ``CimdResolver`` and ``DocumentFetcher`` over ``net`` (its cache on the facade's clock)."""
    facade = Facade()
    fetcher = DocumentFetcher(allow_loopback=True, getaddrinfo=net.getaddrinfo)
    cimd = CimdResolver(fetcher, clock=facade.clock)
    facade.resolver = KitClientResolver(InMemoryClientStore(), cimd, clock=facade.clock)  # type: ignore[assignment]
    return facade


def doc_answer(url: str = URL, **fields: object) -> bytes:
    return http_answer(body=json.dumps(document(url, **fields)).encode())


# Each transient kind: how the network fails (a fault raised, or the answer served).
TRANSIENT: dict[str, BaseException | bytes] = {
    "timeout": TimeoutError("timed out"),
    "connection refused": ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    "connection reset": ConnectionResetError(errno.ECONNRESET, "reset"),
    "connection aborted": ConnectionAbortedError(errno.ECONNABORTED, "aborted"),
    "network unreachable": OSError(errno.ENETUNREACH, "unreachable"),
    "host unreachable": OSError(errno.EHOSTUNREACH, "unreachable"),
    "network down": OSError(errno.ENETDOWN, "down"),
    "host down": OSError(errno.EHOSTDOWN, "down"),
    "DNS EAI_AGAIN": socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    **{f"HTTP {s}": http_answer(s) for s in (408, 429, 500, 502, 503, 504, 599)},
}

# Each definitive kind that gets as far as the network (URL rules are tested in test_cimd.py).
DEFINITIVE: dict[str, BaseException | bytes] = {
    "DNS EAI_NONAME (NXDOMAIN)": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "DNS EAI_FAIL": socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    "DNS error without a code": socket.gaierror("no such host"),
    "connect not permitted": OSError(errno.EACCES, "permission denied"),
    "address not available": OSError(errno.EADDRNOTAVAIL, "cannot assign"),
    **{f"HTTP {s}": http_answer(s) for s in (204, 301, 302, 307, 400, 401, 403, 404, 407, 409, 410, 428, 430, 499)},
    "HTTP 600": http_answer(600),
    "not JSON media type": http_answer(body=json.dumps(document(URL)).encode(), content_type="text/html"),
    "invalid JSON": http_answer(body=b"{not json"),
    "client_id mismatch": doc_answer(URL + "x"),
    "invalid metadata": doc_answer(token_endpoint_auth_method="client_secret_basic"),
    "too large": http_answer(body=b" " * (cimd_fetch.MAX_DOCUMENT_BYTES + 1)),
    "malformed status line": b"HTTP/1.1 abc\r\n\r\n",
}


def script(net: FakeNetwork, failure: BaseException | bytes) -> None:
    if isinstance(failure, bytes):
        net.answer = failure
    else:
        net.fault = failure


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_failure_is_unavailable_not_unknown(net: FakeNetwork, kind: str) -> None:
    script(net, TRANSIENT[kind])
    with pytest.raises(CimdUnavailable):
        resolver(net).resolve(URL)


@pytest.mark.parametrize("kind", DEFINITIVE)
def test_a_definitive_failure_is_an_unknown_client(net: FakeNetwork, kind: str) -> None:
    script(net, DEFINITIVE[kind])
    r = resolver(net)
    with pytest.raises(CimdError) as info:
        r.fetch(URL)
    assert not isinstance(info.value, CimdUnavailable), info.value
    assert r.resolve(URL) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "100.64.0.1", "::ffff:169.254.169.254"])
def test_a_non_public_address_stays_refused_and_is_never_connected_to(net: FakeNetwork, address: str) -> None:
    net.address = address
    assert resolver(net).resolve(URL) is None
    assert net.connects == 0


def test_the_fake_network_serves_a_valid_document(net: FakeNetwork) -> None:
    # The baseline of the two tables above: with no fault, the same path admits the client.
    record = resolver(net).resolve(URL)
    assert record is not None and record.client_id == URL


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        *[(407, False), (408, True), (409, False), (428, False), (429, True), (430, False)],
        *[(499, False), (500, True), (599, True), (600, False), (200, False), (302, False), (404, False)],
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert transient_status(status) is transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (ConnectionAbortedError(), True),
        (BrokenPipeError(), True),
        (OSError(errno.ENETUNREACH, "x"), True),
        (OSError(errno.EHOSTUNREACH, "x"), True),
        (OSError(errno.ENETDOWN, "x"), True),
        (OSError(errno.EHOSTDOWN, "x"), True),
        (OSError(errno.EACCES, "x"), False),
        (OSError(errno.EADDRNOTAVAIL, "x"), False),
        (OSError(errno.EINVAL, "x"), False),
        (OSError(), False),
    ],
)
def test_transient_os_errors(exc: OSError, transient: bool) -> None:
    assert transient_os_error(exc) is transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (socket.gaierror(socket.EAI_AGAIN, "again"), True),
        (socket.gaierror(socket.EAI_NONAME, "no name"), False),
        (socket.gaierror(socket.EAI_FAIL, "fail"), False),
        (UnicodeError("label too long"), False),
    ],
)
def test_only_a_temporary_lookup_failure_is_transient(error: Exception, transient: bool) -> None:
    def lookup(*args: object, **kwargs: object) -> list[object]:
        raise error

    with pytest.raises(CimdError) as info:
        resolve_public("host.example", 443, lookup, allow_loopback=False)
    assert isinstance(info.value, CimdUnavailable) is transient


# TLS: a handshake cut off is a reset (transient); a certificate that does not verify, or no
# common protocol, is the same on every retry (definitive). The loopback tests in
# tests/integration/cimd/test_cimd_unavailable.py drive the real handshakes.
@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), True),
        (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), True),
        (ssl.SSLSyscallError(5, "Some I/O error occurred"), True),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), False),
        (ssl.SSLError(1, "unsupported protocol"), False),
    ],
)
def test_tls_failures(net: FakeNetwork, error: ssl.SSLError, transient: bool) -> None:
    net.fault = error  # raised where the connect and handshake run, as the real ones are
    with pytest.raises(CimdError) as info:
        resolver(net).fetch(URL)
    assert isinstance(info.value, CimdUnavailable) is transient
    assert "TLS" in str(info.value)


# ----- caching --------------------------------------------------------------------------------


def test_a_transient_failure_is_cached_only_until_the_retry_after(net: FakeNetwork) -> None:
    assert UNAVAILABLE_CACHE_SECONDS == RETRY_AFTER_SECONDS < FAILURE_CACHE_SECONDS
    clock = Clock()
    r = resolver(net, clock)
    net.fault = ConnectionRefusedError()
    with pytest.raises(CimdUnavailable):
        r.resolve(URL)
    net.fault = None  # the host is back, but the outage is remembered briefly: not hammered
    clock.now += UNAVAILABLE_CACHE_SECONDS - 0.5
    with pytest.raises(CimdUnavailable):
        r.resolve(URL)
    assert net.connects == 1
    clock.now += 0.5  # the client's retry after Retry-After fetches again
    record = r.resolve(URL)
    assert record is not None and net.connects == 2


def test_a_cached_transient_failure_never_becomes_an_unknown_client(net: FakeNetwork) -> None:
    clock = Clock()
    r = resolver(net, clock)
    net.answer = http_answer(503)
    for _ in range(3):  # from the fetch, then from the cache: never None
        with pytest.raises(CimdUnavailable):
            r.resolve(URL)
    clock.now += UNAVAILABLE_CACHE_SECONDS
    net.answer = http_answer(404)  # only a fresh, definitive answer makes the client unknown
    assert r.resolve(URL) is None
    assert net.connects == 2


def test_a_refusal_is_not_turned_into_an_outage(net: FakeNetwork) -> None:
    clock = Clock()
    r = resolver(net, clock)
    net.answer = http_answer(404)
    assert r.resolve(URL) is None
    net.answer = http_answer(503)
    clock.now += FAILURE_CACHE_SECONDS - 1
    assert r.resolve(URL) is None  # the refusal's cache still answers
    clock.now += 1
    with pytest.raises(CimdUnavailable):
        r.resolve(URL)


def test_an_expired_document_whose_host_is_down_is_unavailable_not_unknown(net: FakeNetwork) -> None:
    clock = Clock()
    r = resolver(net, clock)
    assert r.resolve(URL) is not None  # no-store: the next resolve fetches
    net.fault = TimeoutError()
    with pytest.raises(CimdUnavailable):
        r.resolve(URL)


# ----- metrics --------------------------------------------------------------------------------


def test_transient_and_refused_fetches_are_counted_apart_and_never_as_a_dependency_outage(
    net: FakeNetwork, seen: Captured
) -> None:
    clock = Clock()
    r = resolver(net, clock)
    net.fault = ConnectionResetError()
    for _ in range(2):  # the second from the cache: one fetch, one count
        with pytest.raises(CimdUnavailable):
            r.resolve(URL)
    assert seen.counted("CimdFetchFailures", outcome="unavailable") == 1
    assert seen.counted("CimdFetchFailures", outcome="refused") == 0
    clock.now += UNAVAILABLE_CACHE_SECONDS
    net.fault = None
    net.answer = http_answer(404)
    assert r.resolve(URL) is None
    assert seen.counted("CimdFetchFailures", outcome="refused") == 1
    assert seen.counted("CimdFetchFailures", outcome="unavailable") == 1
    assert seen.counted("DependencyUnavailable") == 0
