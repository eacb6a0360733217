"""Client ID Metadata Documents (CIMD): a ``client_id`` that is an https URL names its metadata.

MCP authorization spec 2025-11-25, "Client ID Metadata Documents", and
draft-ietf-oauth-client-id-metadata-document. Fetching a URL chosen by an anonymous caller
is a server-side request forgery risk (draft section "Server-Side Request Forgery"), so:

* the URL must be https with a non-root path, no userinfo, no fragment, no dot segments;
* the host is resolved once and EVERY address must be public (not private, loopback,
  link-local, multicast, reserved, unspecified, shared, or a cloud metadata address);
* the connection goes to the address that was checked (no second DNS lookup that a
  rebinding attacker could answer differently), TLS verified against the host name;
* no redirects, ``application/json`` only, at most 8 KB of status line and headers and
  5 KB of body, and ONE 3 s deadline for the whole fetch: DNS (in a worker thread, waited
  on with the time left), connect, TLS handshake, request, headers and body; every blocking
  step is given only the time left, so a server dripping bytes cannot extend it;
* the document's ``client_id`` must equal the URL exactly, and it is validated like DCR
  metadata (including the operator's redirect URI patterns), public clients only
  (``token_endpoint_auth_method`` = ``none``);
* results are cached in memory, bounded in entries, for ``max-age`` clamped to
  60 s .. 1 day (``no-store``: not cached); failures for 30 s so a bad URL is not hammered.

``allow_insecure_loopback`` (setting INSECURE_CIMD_LOOPBACK) exists for local tests only:
it admits loopback addresses and http:// on loopback hosts.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

from functions.core.clients.metadata import LOOPBACK_HOSTS, validate_client_metadata
from functions.core.clients.records import ClientRecord, looks_like_url
from functions.core.platform.errors import OAuthError
from functions.core.platform.metrics import count
from functions.core.platform.observability import logger

MAX_DOCUMENT_BYTES: Final = 5 * 1024
MAX_HEADER_BYTES: Final = 8 * 1024  # status line + headers
# Transfer-coding framing (chunk sizes, extensions) allowed on top of the body bytes.
MAX_FRAMING_BYTES: Final = 1024
DNS_WORKERS: Final = 4  # lookups that outlive their deadline hold a worker until they end
FETCH_TIMEOUT_SECONDS: Final = 3.0
MIN_CACHE_SECONDS: Final = 60
MAX_CACHE_SECONDS: Final = 86_400
DEFAULT_CACHE_SECONDS: Final = 300  # no Cache-Control at all
FAILURE_CACHE_SECONDS: Final = 30
MAX_CACHE_ENTRIES: Final = 256
MAX_URL_LENGTH: Final = 2000

# Cloud instance-metadata and container-credential endpoints (AWS IPv4/IPv6, ECS, EKS pod
# identity). All are non-global anyway; listed so the intent survives any library change.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23")
)
# NAT64 prefixes embed an IPv4 address that must itself be vetted.
_NAT64: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

__all__ = ["CimdError", "CimdResolver", "looks_like_url", "parse_client_id_url", "record_from_document"]

AddrInfo = list[tuple[Any, Any, Any, str, tuple[Any, ...]]]
GetAddrInfo = Callable[..., AddrInfo]


class CimdError(Exception):
    """The URL or its document is refused; the message names the rule (never secrets)."""


@dataclass(frozen=True)
class ClientIdUrl:
    url: str
    scheme: str
    host: str
    port: int
    target: str  # path + query, as sent in the request line


def parse_client_id_url(url: str, *, allow_insecure_loopback: bool = False) -> ClientIdUrl:
    """Check the client identifier URL rules (CIMD draft, "Client Identifier URL")."""
    if len(url) > MAX_URL_LENGTH:
        raise CimdError("client_id URL is too long")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise CimdError("client_id URL must be ASCII without whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CimdError("client_id URL is malformed") from exc
    host = parts.hostname or ""
    if parts.scheme != "https" and not (allow_insecure_loopback and parts.scheme == "http" and host in LOOPBACK_HOSTS):
        raise CimdError("client_id URL must use https")
    if not host:
        raise CimdError("client_id URL must have a host")
    if "@" in parts.netloc:
        raise CimdError("client_id URL must not contain userinfo")
    if "#" in url:
        raise CimdError("client_id URL must not contain a fragment")
    if parts.path in ("", "/"):
        raise CimdError("client_id URL must contain a path")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise CimdError("client_id URL must not contain dot segments")
    default_port = 443 if parts.scheme == "https" else 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return ClientIdUrl(url, parts.scheme, host, port or default_port, target)


def vet_address(text: str, *, allow_loopback: bool = False) -> str:
    """Refuse any address a server-side fetch must not reach; return the address text."""
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
    """Resolve ``host``; every address must pass ``vet_address`` (a mixed answer is refused)."""
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise CimdError("host does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise CimdError("host does not resolve")
    return [vet_address(a, allow_loopback=allow_loopback) for a in addresses]


class _FetchTimeout(CimdError):
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
        self._in_headers = False
        self._budget = self._document_limit + 1 + MAX_FRAMING_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
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


def cache_seconds(cache_control: str | None) -> int | None:
    """Seconds to cache a document; None for ``no-store``. ``max-age`` is clamped."""
    if not cache_control:
        return DEFAULT_CACHE_SECONDS
    max_age: int | None = None
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "no-store":
            return None
        if name == "no-cache":
            max_age = 0  # we never revalidate, so the shortest allowed lifetime
        elif name == "max-age" and max_age is None:
            try:
                max_age = int(value.strip().strip('"'))
            except ValueError:
                max_age = 0
    if max_age is None:
        return DEFAULT_CACHE_SECONDS
    return min(MAX_CACHE_SECONDS, max(MIN_CACHE_SECONDS, max_age))


def record_from_document(url: str, document: object, *, redirect_patterns: Sequence[str] = ()) -> ClientRecord:
    """Validate a fetched document for ``url`` and turn it into a public ClientRecord.

    ``redirect_patterns``: the operator's REGISTRATION_REDIRECT_PATTERNS. RFC 9700 section
    4.1.3: a CIMD client is held to the same redirect URI policy as a registered one, else
    the policy could be bypassed by hosting a document instead of registering.
    """
    if not isinstance(document, dict):
        raise CimdError("document is not a JSON object")
    # CIMD draft, "Client ID Metadata Document": client_id MUST equal the URL exactly.
    if document.get("client_id") != url:
        raise CimdError("document client_id does not match its URL")
    # CIMD draft: shared secrets MUST NOT appear; there is nothing they could be shared with.
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise CimdError("document must not contain a client secret")
    try:
        meta = validate_client_metadata(
            document,
            redirect_patterns=redirect_patterns,
            allowed_auth_methods=("none",),
            default_auth_method="none",
        )
    except OAuthError as exc:
        raise CimdError(f"document metadata is invalid: {exc.description}") from exc
    return ClientRecord(
        client_id=url,
        kind="cimd",
        redirect_uris=meta.redirect_uris,
        token_endpoint_auth_method="none",
        grant_types=meta.grant_types,
        client_name=meta.client_name,
        scope=meta.scope,
        metadata={"client_id": url, **meta.to_json()},
    )


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class CimdResolver:
    """Fetch, validate and cache Client ID Metadata Documents (one per container)."""

    def __init__(
        self,
        *,
        allow_insecure_loopback: bool = False,
        ca_file: str | None = None,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        max_entries: int = MAX_CACHE_ENTRIES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        redirect_patterns: Sequence[str] = (),
    ) -> None:
        self._insecure = allow_insecure_loopback
        self._redirect_patterns = tuple(redirect_patterns)
        self._max_header_bytes = max_header_bytes
        # Bounded: a lookup past its deadline keeps its worker until the system resolver
        # gives up; when all are busy, new lookups queue and time out instead of piling up.
        self._dns = ThreadPoolExecutor(max_workers=DNS_WORKERS, thread_name_prefix="cimd-dns")
        self._ca_file = ca_file
        self._context: ssl.SSLContext | None = None
        self._getaddrinfo = getaddrinfo
        self._clock = clock
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, ClientRecord | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.fetches = 0

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            # Default CA store, or only CIMD_CA_FILE when set; hostname checks stay on.
            context = ssl.create_default_context(cafile=self._ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = context
        return self._context

    def resolve(self, client_id: str) -> ClientRecord | None:
        """The client described by the document at ``client_id``, or None if refused."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(client_id)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(client_id)
                return hit[1]
        try:
            record, ttl = self.fetch(client_id)
        except CimdError as exc:
            logger.warning("client metadata document refused", extra={"reason": str(exc)})
            count("CimdFetchFailures")
            record, ttl = None, FAILURE_CACHE_SECONDS
        if ttl is not None:
            with self._lock:
                self._cache.pop(client_id, None)
                while len(self._cache) >= self._max_entries:
                    self._cache.popitem(last=False)
                self._cache[client_id] = (now + ttl, record)
        return record

    def fetch(self, client_id: str) -> tuple[ClientRecord, int | None]:
        """Fetch and validate without the cache; returns the record and its cache lifetime."""
        url = parse_client_id_url(client_id, allow_insecure_loopback=self._insecure)
        # ONE deadline for DNS + connect + TLS + request + headers + body (CIMD draft,
        # "Server-Side Request Forgery": bound the work an anonymous caller can cause).
        deadline = time.monotonic() + self._timeout
        addresses = self._resolve(url, deadline)
        self.fetches += 1
        status, content_type, cache_control, body = self._get(url, addresses[0], deadline)
        # CIMD draft: the document is served with 200; redirects are not followed.
        if 300 <= status < 400:
            raise CimdError("redirects are not followed for client metadata documents")
        if status != 200:
            raise CimdError(f"document fetch answered HTTP {status}")
        if not _is_json(content_type):
            raise CimdError("document is not served as application/json")
        try:
            document = json.loads(body.decode("utf-8"))
        # RecursionError: a 5 KB body can nest 2,000 levels deep; the C parser then gives up
        # with RecursionError, not ValueError. Either way the document is refused, never a 500.
        except (ValueError, RecursionError) as exc:
            raise CimdError("document is not valid JSON") from exc
        record = record_from_document(client_id, document, redirect_patterns=self._redirect_patterns)
        return record, cache_seconds(cache_control)

    def _resolve(self, url: ClientIdUrl, deadline: float) -> list[str]:
        """``resolve_public`` in a worker thread: getaddrinfo itself has no timeout."""
        future = self._dns.submit(resolve_public, url.host, url.port, self._getaddrinfo, allow_loopback=self._insecure)
        try:
            return future.result(timeout=_time_left(deadline))
        except TimeoutError as exc:
            future.cancel()  # still queued behind stuck lookups: drop it
            raise CimdError("host name lookup timed out") from exc

    def _get(self, url: ClientIdUrl, address: str, deadline: float) -> tuple[int, str | None, str | None, bytes]:
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
            reader = _DeadlineReader(sock, deadline, self._max_header_bytes, self._max_bytes)
            # http.client parses status, headers and transfer codings; it only ever reads
            # through ``reader``, so each recv is deadline- and size-bounded.
            resp = http.client.HTTPResponse(cast(socket.socket, _DeadlineSocket(reader)), method="GET")
            resp.begin()
            reader.body()
            length = resp.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self._max_bytes:
                raise CimdError(f"document is larger than {self._max_bytes} bytes")
            body = b""
            if 200 <= resp.status < 300:
                # Read at most max+1 bytes; every underlying recv checks the deadline.
                while len(body) <= self._max_bytes:
                    chunk = resp.read1(self._max_bytes + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
                if len(body) > self._max_bytes:
                    raise CimdError(f"document is larger than {self._max_bytes} bytes")
            return resp.status, resp.getheader("Content-Type"), resp.getheader("Cache-Control"), body
        except TimeoutError as exc:
            raise _FetchTimeout from exc
        except ssl.SSLError as exc:
            raise CimdError("TLS to the document host failed") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CimdError(f"document fetch failed: {exc.__class__.__name__}") from exc
        finally:
            if sock is not None:
                sock.close()
