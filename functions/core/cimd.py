"""Client ID Metadata Documents (CIMD): a ``client_id`` that is an https URL names its metadata.

MCP authorization spec 2025-11-25, "Client ID Metadata Documents", and
draft-ietf-oauth-client-id-metadata-document. Fetching a URL chosen by an anonymous caller
is a server-side request forgery risk (draft section "Server-Side Request Forgery"), so:

* the URL must be https with a non-root path, no userinfo, no fragment, no dot segments;
* the host is resolved once and EVERY address must be public (not private, loopback,
  link-local, multicast, reserved, unspecified, shared, or a cloud metadata address);
* the connection goes to the address that was checked (no second DNS lookup that a
  rebinding attacker could answer differently), TLS verified against the host name;
* no redirects, at most 5 KB, 3 s in total, ``application/json`` only;
* the document's ``client_id`` must equal the URL exactly, and it is validated like DCR
  metadata, public clients only (``token_endpoint_auth_method`` = ``none``);
* results are cached in memory, bounded in entries, for ``max-age`` clamped to
  60 s .. 1 day (``no-store``: not cached); failures for 30 s so a bad URL is not hammered.

``allow_insecure_loopback`` (setting INSECURE_CIMD_LOOPBACK) exists for local tests only:
it admits loopback addresses and http:// on loopback hosts.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from functions.core.client_metadata import LOOPBACK_HOSTS, validate_client_metadata
from functions.core.clients import ClientRecord
from functions.core.errors import OAuthError
from functions.core.observability import logger

MAX_DOCUMENT_BYTES: Final = 5 * 1024
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

AddrInfo = list[tuple[Any, Any, Any, str, tuple[Any, ...]]]
GetAddrInfo = Callable[..., AddrInfo]


class CimdError(Exception):
    """The URL or its document is refused; the message names the rule (never secrets)."""


def looks_like_url(client_id: str) -> bool:
    """A URL-shaped client_id is a metadata document; DCR ids are opaque base64url."""
    return client_id[:8].lower().startswith(("https://", "http://"))


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


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address; SNI and certificate checks use the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context
        self.raw_socket: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), timeout=self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.raw_socket = self.sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain http to a vetted loopback address (INSECURE_CIMD_LOOPBACK only)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self.raw_socket: socket.socket | None = None

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), timeout=self.timeout)
        self.raw_socket = self.sock


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


def record_from_document(url: str, document: object) -> ClientRecord:
    """Validate a fetched document for ``url`` and turn it into a public ClientRecord."""
    if not isinstance(document, dict):
        raise CimdError("document is not a JSON object")
    # CIMD draft, "Client ID Metadata Document": client_id MUST equal the URL exactly.
    if document.get("client_id") != url:
        raise CimdError("document client_id does not match its URL")
    # CIMD draft: shared secrets MUST NOT appear; there is nothing they could be shared with.
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise CimdError("document must not contain a client secret")
    try:
        meta = validate_client_metadata(document, allowed_auth_methods=("none",), default_auth_method="none")
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
    ) -> None:
        self._insecure = allow_insecure_loopback
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
        deadline = time.monotonic() + self._timeout
        addresses = resolve_public(url.host, url.port, self._getaddrinfo, allow_loopback=self._insecure)
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
        except ValueError as exc:
            raise CimdError("document is not valid JSON") from exc
        return record_from_document(client_id, document), cache_seconds(cache_control)

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CimdError("document fetch timed out")
        return remaining

    def _get(self, url: ClientIdUrl, address: str, deadline: float) -> tuple[int, str | None, str | None, bytes]:
        conn: _PinnedHTTPSConnection | _PinnedHTTPConnection
        if url.scheme == "https":
            conn = _PinnedHTTPSConnection(
                url.host, url.port, address=address, timeout=self._remaining(deadline), context=self._tls()
            )
        else:
            conn = _PinnedHTTPConnection(url.host, url.port, address=address, timeout=self._remaining(deadline))
        try:
            conn.request(
                "GET", url.target, headers={"Accept": "application/json", "User-Agent": "mcp-cognito-kit/cimd"}
            )
            if conn.raw_socket is not None:
                conn.raw_socket.settimeout(self._remaining(deadline))
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self._max_bytes:
                raise CimdError(f"document is larger than {self._max_bytes} bytes")
            body = b""
            if 200 <= resp.status < 300:
                # Read at most max+1 bytes, checking the overall deadline between chunks.
                while len(body) <= self._max_bytes:
                    if conn.raw_socket is not None:
                        conn.raw_socket.settimeout(self._remaining(deadline))
                    chunk = resp.read1(self._max_bytes + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
                if len(body) > self._max_bytes:
                    raise CimdError(f"document is larger than {self._max_bytes} bytes")
            return resp.status, resp.getheader("Content-Type"), resp.getheader("Cache-Control"), body
        except TimeoutError as exc:
            raise CimdError("document fetch timed out") from exc
        except ssl.SSLError as exc:
            raise CimdError("TLS to the document host failed") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CimdError(f"document fetch failed: {exc.__class__.__name__}") from exc
        finally:
            conn.close()
