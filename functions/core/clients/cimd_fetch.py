"""The socket-level fetch of a Client ID Metadata Document: SSRF-safe, bounded in time and size.

Fetching a URL chosen by an anonymous caller is a server-side request forgery risk (CIMD
draft, "Server-Side Request Forgery"; RFC 9700 section 4.16), so ``DocumentFetcher.get``:

* resolves the host once, in a worker thread, and requires EVERY address to be public (not
  private, loopback, link-local, multicast, reserved, unspecified, shared, or a cloud metadata
  address; IPv6 forms that embed an IPv4 address are vetted on that address too);
* connects to the address that was checked (no second DNS lookup that a rebinding attacker
  could answer differently), with TLS verified against the host name;
* reads at most 8 KB of status line and headers and 5 KB of body, under ONE 3 s deadline for
  DNS, connect, TLS handshake, request, headers and body: every blocking step is given only the
  time left, so a server dripping bytes cannot extend it.

A failure is ``CimdError`` (definitive: the client is unknown) or its subclass ``CimdUnavailable``
(transient: a later try can succeed): the deadline passed, the lookup failed temporarily
(``EAI_AGAIN``; a name that does not exist stays definitive), the connection was refused, reset
or the host unreachable, or the TLS handshake was cut off. A certificate that does not verify,
and any other TLS failure (no common protocol or cipher), is definitive: it is a misconfiguration
or an impersonation, not an outage, and a retry seconds later meets the same certificate
(RFC 9110 section 4.3.4: a certificate not valid for the origin ends the connection as an error).

What the answer must be (status, media type, the document itself, caching) is decided by
``functions.core.clients.cimd``. ``allow_loopback`` (setting INSECURE_CIMD_LOOPBACK) exists for
local tests only: it admits loopback addresses.
"""

from __future__ import annotations

import errno
import http.client
import io
import ipaddress
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, cast

MAX_DOCUMENT_BYTES: Final = 5 * 1024
MAX_HEADER_BYTES: Final = 8 * 1024  # status line + headers
# Transfer-coding framing (chunk sizes, extensions) allowed on top of the body bytes.
MAX_FRAMING_BYTES: Final = 1024
DNS_WORKERS: Final = 4  # lookups that outlive their deadline hold a worker until they end
FETCH_TIMEOUT_SECONDS: Final = 3.0

# Cloud instance-metadata and container-credential endpoints (AWS IPv4/IPv6, ECS, EKS pod
# identity). All are non-global anyway; listed so the intent survives any library change.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23")
)
# NAT64 prefixes embed an IPv4 address that must itself be vetted.
_NAT64: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

AddrInfo = list[tuple[Any, Any, Any, str, tuple[Any, ...]]]
GetAddrInfo = Callable[..., AddrInfo]


# OSError numbers that say the host cannot be reached now (a route or link that may come back).
_UNREACHABLE: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


class CimdError(Exception):
    """The URL or its document is refused; the message names the rule (never secrets)."""


class CimdUnavailable(CimdError):
    """The document could not be fetched for now, and a later try can succeed (a timeout, a
    temporary DNS failure, a refused or reset connection, HTTP 408, 429 or 5xx).

    Not a refusal: callers answer "temporarily unavailable, retry" (503 + ``Retry-After``),
    never "unknown client". The message names what failed (never secrets).
    """


def transient_os_error(exc: OSError) -> bool:
    """True when ``exc`` (raised while connecting or reading) says the host cannot be reached now:
    a refused, reset or aborted connection (``ConnectionError``) or an unreachable network or host."""
    return isinstance(exc, ConnectionError) or exc.errno in _UNREACHABLE


@dataclass(frozen=True)
class ClientIdUrl:
    """A checked client identifier URL, split for the request (``target`` = path + query)."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path + query, as sent in the request line


@dataclass(frozen=True)
class FetchedDocument:
    """One HTTP answer: status, the two headers the policy reads, and at most ``max_bytes`` of body."""

    status: int
    content_type: str | None
    cache_control: str | None
    body: bytes


def vet_address(text: str, *, allow_loopback: bool = False) -> str:
    """Refuse any address a server-side fetch must not reach (``CimdError``); return the address text."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError as exc:
        raise CimdError("host resolved to an unparsable address") from exc
    embedded: ipaddress.IPv4Address | None = None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.teredo is not None:
            raise CimdError("host resolved to a Teredo address")
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and any(addr in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    for candidate in (addr, embedded):
        if candidate is None:
            continue
        if allow_loopback and candidate.is_loopback:
            continue  # INSECURE_CIMD_LOOPBACK: local testing only
        if candidate in METADATA_ADDRESSES:
            raise CimdError("host resolved to a cloud metadata address")
        if (
            candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
            or not candidate.is_global
        ):
            raise CimdError("host resolved to a non-public address")
    return str(addr)


def resolve_public(host: str, port: int, getaddrinfo: GetAddrInfo, *, allow_loopback: bool) -> list[str]:
    """Resolve ``host``; every address must pass ``vet_address`` (a mixed answer is refused).

    Raises ``CimdUnavailable`` when the lookup failed temporarily (``EAI_AGAIN``), ``CimdError``
    when the name does not resolve or an address is refused.
    """
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        # EAI_AGAIN: the resolver could not answer now (a server failure or timeout upstream);
        # EAI_NONAME (NXDOMAIN) and the rest say the name is not usable: definitive.
        if exc.errno == socket.EAI_AGAIN:
            raise CimdUnavailable("host name lookup failed temporarily") from exc
        raise CimdError("host does not resolve") from exc
    except (OSError, UnicodeError) as exc:
        raise CimdError("host does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise CimdError("host does not resolve")
    return [vet_address(a, allow_loopback=allow_loopback) for a in addresses]


class _FetchTimeout(CimdUnavailable):
    """The overall fetch deadline passed."""

    def __init__(self) -> None:
        super().__init__("document fetch timed out")


def _time_left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _FetchTimeout
    return remaining


class _DeadlineReader(io.RawIOBase):
    """The response byte stream for ``http.client``: every recv is bounded by the deadline.

    ``http.client`` would otherwise apply the socket timeout per read, which a server
    dripping one byte at a time resets forever. Before each recv the deadline is checked
    and the socket timeout set to the time left. Bytes are also budgeted: at most
    ``header_limit`` until the headers are parsed (``body()`` switches phase), then at most
    ``document_limit`` + 1 + MAX_FRAMING_BYTES more (the decoded body is capped by the caller).
    """

    def __init__(self, sock: socket.socket, deadline: float, header_limit: int, document_limit: int) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._budget = header_limit
        self._header_limit = header_limit
        self._document_limit = document_limit
        self._in_headers = True

    def body(self) -> None:
        """The headers are parsed: from now on the byte budget is the document's."""
        self._in_headers = False
        self._budget = self._document_limit + 1 + MAX_FRAMING_BYTES

    def readable(self) -> bool:
        """Always: this is a read-only stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """One ``recv`` into ``buffer``, within the time left and the byte budget (``CimdError`` past either)."""
        if self._budget <= 0:
            if self._in_headers:
                raise CimdError(f"response headers are larger than {self._header_limit} bytes")
            raise CimdError(f"document is larger than {self._document_limit} bytes")
        view = memoryview(buffer).cast("B")
        self._sock.settimeout(_time_left(self._deadline))
        n = self._sock.recv_into(view[: min(len(view), self._budget)])
        self._budget -= n
        return n


class _DeadlineSocket:
    """The one socket method ``http.client.HTTPResponse`` uses: ``makefile``."""

    def __init__(self, reader: _DeadlineReader) -> None:
        self._reader = reader

    def makefile(self, mode: str) -> io.BufferedReader:
        """The deadline-bounded reader, buffered as ``http.client`` expects."""
        return io.BufferedReader(self._reader)


def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
    """TLS handshake in non-blocking mode, waiting only for the time left between steps."""
    tls.setblocking(False)
    with selectors.DefaultSelector() as selector:
        while True:
            try:
                tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                events = selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                events = selectors.EVENT_WRITE
            selector.register(tls, events)
            ready = selector.select(_time_left(deadline))
            selector.unregister(tls)
            if not ready:
                raise _FetchTimeout


class DocumentFetcher:
    """GET one small document from a vetted address, under one deadline (one per container).

    ``fetches`` counts the connections attempted (tests prove a refused address is never reached).
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        ca_file: str | None = None,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.allow_loopback = allow_loopback
        # Bounded: a lookup past its deadline keeps its worker until the system resolver
        # gives up; when all are busy, new lookups queue and time out instead of piling up.
        self._dns = ThreadPoolExecutor(max_workers=DNS_WORKERS, thread_name_prefix="cimd-dns")
        self._ca_file = ca_file
        self._context: ssl.SSLContext | None = None
        self._getaddrinfo = getaddrinfo
        self._timeout = timeout
        self.max_bytes = max_bytes
        self._max_header_bytes = max_header_bytes
        self.fetches = 0

    def get(self, url: ClientIdUrl) -> FetchedDocument:
        """Resolve, vet, connect, and read the answer to ``GET url.target``.

        Raises ``CimdUnavailable`` (transient) when the deadline (monotonic seconds from the call)
        passes, the lookup fails temporarily, the host refuses, resets or cannot be reached, or
        the TLS handshake is cut off; ``CimdError`` for a refused address, a name that does not
        resolve, a certificate that does not verify or another TLS failure, a malformed answer,
        or an answer over the size caps. A 2xx body is at most ``max_bytes``; other answers carry
        no body. The status is not judged here (``functions.core.clients.cimd`` does).
        """
        # ONE deadline for DNS + connect + TLS + request + headers + body (CIMD draft,
        # "Server-Side Request Forgery": bound the work an anonymous caller can cause).
        deadline = time.monotonic() + self._timeout
        addresses = self._resolve(url, deadline)
        self.fetches += 1
        return self._get(url, addresses[0], deadline)

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            # Default CA store, or only CIMD_CA_FILE when set; hostname checks stay on.
            context = ssl.create_default_context(cafile=self._ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = context
        return self._context

    def _resolve(self, url: ClientIdUrl, deadline: float) -> list[str]:
        """``resolve_public`` in a worker thread: getaddrinfo itself has no timeout."""
        future = self._dns.submit(
            resolve_public, url.host, url.port, self._getaddrinfo, allow_loopback=self.allow_loopback
        )
        try:
            return future.result(timeout=_time_left(deadline))
        except TimeoutError as exc:
            future.cancel()  # still queued behind stuck lookups: drop it
            raise CimdUnavailable("host name lookup timed out") from exc

    def _get(self, url: ClientIdUrl, address: str, deadline: float) -> FetchedDocument:
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((address, url.port), timeout=_time_left(deadline))
            if url.scheme == "https":
                # Connect to the vetted address; SNI and certificate checks use the host name.
                sock = self._tls().wrap_socket(sock, server_hostname=url.host, do_handshake_on_connect=False)
                _handshake(sock, deadline)
            host = f"[{url.host}]" if ":" in url.host else url.host
            default_port = 443 if url.scheme == "https" else 80
            authority = host if url.port == default_port else f"{host}:{url.port}"
            request = (
                f"GET {url.target} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\n"
                "Accept-Encoding: identity\r\nUser-Agent: mcp-cognito-kit/cimd\r\nConnection: close\r\n\r\n"
            )
            sock.settimeout(_time_left(deadline))
            sock.sendall(request.encode("ascii"))
            reader = _DeadlineReader(sock, deadline, self._max_header_bytes, self.max_bytes)
            # http.client parses status, headers and transfer codings; it only ever reads
            # through ``reader``, so each recv is deadline- and size-bounded.
            resp = http.client.HTTPResponse(cast(socket.socket, _DeadlineSocket(reader)), method="GET")
            resp.begin()
            reader.body()
            length = resp.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
                raise CimdError(f"document is larger than {self.max_bytes} bytes")
            body = b""
            if 200 <= resp.status < 300:
                # Read at most max+1 bytes; every underlying recv checks the deadline.
                while len(body) <= self.max_bytes:
                    chunk = resp.read1(self.max_bytes + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
                if len(body) > self.max_bytes:
                    raise CimdError(f"document is larger than {self.max_bytes} bytes")
            return FetchedDocument(resp.status, resp.getheader("Content-Type"), resp.getheader("Cache-Control"), body)
        except TimeoutError as exc:
            raise _FetchTimeout from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
            # The handshake or the stream was cut off (the TLS form of a reset): transient.
            raise CimdUnavailable("TLS connection to the document host was cut off") from exc
        except ssl.SSLError as exc:
            # A certificate that does not verify (SSLCertVerificationError) or no common protocol
            # or cipher: the same on every retry, so definitive (module docstring).
            raise CimdError("TLS to the document host failed") from exc
        except OSError as exc:
            if transient_os_error(exc):  # refused, reset (RemoteDisconnected too), unreachable
                raise CimdUnavailable(f"document host unreachable: {exc.__class__.__name__}") from exc
            raise CimdError(f"document fetch failed: {exc.__class__.__name__}") from exc
        except http.client.HTTPException as exc:
            raise CimdError(f"document fetch failed: {exc.__class__.__name__}") from exc
        finally:
            if sock is not None:
                sock.close()
