"""Client ID Metadata Documents: URL rules, address vetting, fetch limits, caching.

Network tests use only loopback servers started here (TLS with a throwaway CA made with
``cryptography``); no sleeps in the tests: the timeout tests use a 0.3 s deadline against a
stalled or byte-dripping server thread, or a DNS lookup blocked on an Event.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from functions.core.clients.cimd import (
    DNS_WORKERS,
    FAILURE_CACHE_SECONDS,
    MAX_CACHE_SECONDS,
    MAX_HEADER_BYTES,
    MIN_CACHE_SECONDS,
    CimdError,
    CimdResolver,
    cache_seconds,
    looks_like_url,
    parse_client_id_url,
    record_from_document,
    resolve_public,
    vet_address,
)
from functions.core.clients.records import ClientRecord
from functions.core.clients.resolver import make_client_resolver
from functions.core.platform.settings import FacadeSettings
from tests.helpers import BASE_URL, CLAUDE_METADATA, GATEWAY_CLIENT, POOL_ID, REGION

# ----- certificates -----------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost / cimd.test / 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("cimd test CA"))
        .issuer_name(_name("cimd test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("cimd.test"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


# ----- a loopback document server ---------------------------------------------------------


def document(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "CIMD Agent",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


class _Handler(BaseHTTPRequestHandler):
    server: DocServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        scheme = "https" if self.server.tls else "http"
        url = f"{scheme}://{self.headers['Host']}{self.path}"
        status, headers, body, length = 200, {"Content-Type": "application/json"}, b"", True
        path = self.path.split("?")[0]
        if path == "/client.json":
            body = json.dumps(document(url)).encode()
            headers["Cache-Control"] = "max-age=600"
        elif path == "/exact.json":
            body = json.dumps(document(url)).encode()
            body += b" " * (5 * 1024 - len(body))
        elif path in ("/big.json", "/big-stream.json"):
            body = json.dumps(document(url)).encode()
            body += b" " * (5 * 1024 + 1 - len(body))
            length = path == "/big.json"
        elif path == "/bigheaders.json":
            body = json.dumps(document(url)).encode()
            for i in range(3):  # status line + headers well over 8 KB
                headers[f"X-Pad-{i}"] = "a" * 3000
        elif path == "/okheaders.json":
            # 4 KB of headers and a 5 KB body: each within its own cap, together over 8 KB.
            body = json.dumps(document(url)).encode()
            body += b" " * (5 * 1024 - len(body))
            headers["X-Pad"] = "a" * 4000
        elif path == "/stall.json":
            self.server.release.wait(10)
            return
        elif path == "/redirect.json":
            status, headers = 302, {"Location": "/client.json"}
        elif path == "/html.json":
            body, headers = json.dumps(document(url)).encode(), {"Content-Type": "text/html"}
        elif path == "/mismatch.json":
            body = json.dumps(document(url + "x")).encode()
        elif path == "/secret.json":
            body = json.dumps(document(url, client_secret="s3cret")).encode()
        elif path == "/basic.json":
            body = json.dumps(document(url, token_endpoint_auth_method="client_secret_basic")).encode()
        elif path == "/pkjwt.json":
            body = json.dumps(document(url, token_endpoint_auth_method="private_key_jwt")).encode()
        elif path == "/badredirect.json":
            body = json.dumps(document(url, redirect_uris=["http://evil.example/cb"])).encode()
        elif path == "/notjson.json":
            body = b"{not json"
        elif path == "/nested.json":  # 2,000 levels deep in 4,000 bytes: RecursionError in json
            body = b"[" * 2000 + b"]" * 2000
        elif path == "/claude.json":  # the shape of Claude's published document
            body = json.dumps({**CLAUDE_METADATA, "client_id": url, "client_uri": "https://claude.ai"}).encode()
        elif path == "/bidi.json":
            body = json.dumps(document(url, client_name="Trusted\u202e\u2066 Agent", software_id="a\u200bb")).encode()
        else:
            status, body = 404, b"{}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DocServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls is not None
        self.requests: list[str] = []
        self.release = threading.Event()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@dataclass
class Servers:
    https: DocServer
    http: DocServer
    ca_file: str
    threads: list[threading.Thread] = field(default_factory=list)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    ca_file, cert_file, key_file = make_pki(tmp_path_factory.mktemp("pki"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    found = Servers(DocServer(tls), DocServer(None), str(ca_file))
    for server in (found.https, found.http):
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        found.threads.append(thread)
    yield found
    for server in (found.https, found.http):
        server.release.set()
        server.shutdown()
        server.server_close()


def fake_dns(mapping: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        if host not in mapping:
            raise socket.gaierror("no such host")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in mapping[host]
        ]

    getaddrinfo.calls = calls  # type: ignore[attr-defined]
    return getaddrinfo


def loopback_resolver(servers: Servers, **kw: Any) -> CimdResolver:
    kw.setdefault("allow_insecure_loopback", True)
    kw.setdefault("ca_file", servers.ca_file)
    return CimdResolver(**kw)


# ----- URL rules --------------------------------------------------------------------------


def test_url_shaped_client_ids() -> None:
    assert looks_like_url("https://app.example.com/client.json")
    assert looks_like_url("HTTP://localhost/x")
    assert not looks_like_url("Zx8pQ2aV0mN4bT6cY1eW3g")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://app.example.com/client.json", "https"),
        ("ftp://app.example.com/client.json", "https"),
        ("https://app.example.com", "path"),
        ("https://app.example.com/", "path"),
        ("https://user@app.example.com/client.json", "userinfo"),
        ("https://app.example.com/client.json#frag", "fragment"),
        ("https://app.example.com/a/../client.json", "dot"),
        ("https://app.example.com/./client.json", "dot"),
        ("https:///client.json", "host"),
        ("https://app.example.com:99999/client.json", "malformed"),
        ("https://app.example.com/cli ent.json", "whitespace"),
        ("https://app.example.com/" + "a" * 2000, "too long"),
    ],
)
def test_client_id_url_rules(url: str, why: str) -> None:
    with pytest.raises(CimdError, match=why):
        parse_client_id_url(url)


def test_client_id_url_parts() -> None:
    parsed = parse_client_id_url("https://app.example.com:8443/oauth/client.json?v=1")
    assert (parsed.host, parsed.port, parsed.target) == ("app.example.com", 8443, "/oauth/client.json?v=1")
    assert parse_client_id_url("https://app.example.com/c").port == 443


def test_http_only_on_loopback_and_only_when_insecure() -> None:
    with pytest.raises(CimdError, match="https"):
        parse_client_id_url("http://localhost:8000/client.json")
    assert parse_client_id_url("http://localhost:8000/client.json", allow_insecure_loopback=True).port == 8000
    with pytest.raises(CimdError, match="https"):
        parse_client_id_url("http://app.example.com/client.json", allow_insecure_loopback=True)


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
    resolver = CimdResolver(getaddrinfo=dns)
    with pytest.raises(CimdError, match="metadata"):
        resolver.fetch("https://meta.example/client.json")
    assert resolver.fetches == 0
    assert dns.calls == ["meta.example"]


def test_default_resolver_refuses_loopback_servers(servers: Servers) -> None:
    resolver = CimdResolver(ca_file=servers.ca_file)  # INSECURE_CIMD_LOOPBACK off
    before = len(servers.https.requests)
    assert resolver.resolve(f"https://localhost:{servers.https.port}/client.json") is None
    assert len(servers.https.requests) == before


# ----- fetching ---------------------------------------------------------------------------


def facade_settings(servers: Servers, **kw: Any) -> FacadeSettings:
    return FacadeSettings(
        base_url=BASE_URL,
        user_pool_id=POOL_ID,
        region=REGION,
        gateway_client_id=GATEWAY_CLIENT,
        cognito_domain_url="https://auth.example.com",
        clients_table="clients",
        artefacts_table="artefacts",
        grants_table="grants",
        kms_key_id="alias/kit",
        insecure_cimd_loopback=True,
        cimd_ca_file=servers.ca_file,
        **kw,
    )


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
    resolver = CimdResolver(allow_insecure_loopback=True)  # default CA store only
    with pytest.raises(CimdError, match="TLS"):
        resolver.fetch(f"https://localhost:{servers.https.port}/client.json")


def test_http_document_only_with_insecure_loopback(servers: Servers) -> None:
    url = f"http://localhost:{servers.http.port}/client.json"
    assert CimdResolver(allow_insecure_loopback=True).fetch(url)[0].client_id == url
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
    with pytest.raises(CimdError, match="timed out"):
        resolver.fetch(f"https://localhost:{servers.https.port}/stall.json")


def test_operator_redirect_patterns_apply_to_documents(servers: Servers) -> None:
    # The document's redirect URI is http://127.0.0.1:33418/callback.
    url = f"https://localhost:{servers.https.port}/client.json"
    strict = facade_settings(servers, redirect_patterns="https://*.corp.example/*")
    assert make_client_resolver(strict).resolve(url) is None
    with pytest.raises(CimdError, match="policy"):
        loopback_resolver(servers, redirect_patterns=strict.redirect_patterns).fetch(url)
    allowing = facade_settings(servers, redirect_patterns="https://*.corp.example/*,http://127.0.0.1:*/callback")
    record = make_client_resolver(allowing).resolve(url)
    assert record is not None
    assert record.redirect_uris == ("http://127.0.0.1:33418/callback",)


def test_record_from_document_applies_redirect_patterns() -> None:
    url = "https://app.example.com/client.json"
    doc = document(url, redirect_uris=["https://evil.com/.corp.example/cb"])
    assert record_from_document(url, doc).redirect_uris == ("https://evil.com/.corp.example/cb",)
    with pytest.raises(CimdError, match="policy"):
        record_from_document(url, doc, redirect_patterns=("https://*.corp.example/*",))


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
        with pytest.raises(CimdError, match="timed out"):
            resolver.fetch(f"{scheme}://localhost:{port}{path}")
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE * 2


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
    resolver = CimdResolver(getaddrinfo=dns, timeout=DEADLINE)
    try:
        started = time.monotonic()
        with pytest.raises(CimdError, match="lookup timed out"):
            resolver.fetch("https://slow.example/client.json")
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < DEADLINE * 2
    assert dns.started == ["slow.example"]
    assert resolver.fetches == 0  # nothing was connected to


def test_stuck_lookups_do_not_pile_up_threads() -> None:
    release = threading.Event()
    dns = slow_dns(release)
    resolver = CimdResolver(getaddrinfo=dns, timeout=0.05)
    try:
        started = time.monotonic()
        for i in range(DNS_WORKERS + 2):
            with pytest.raises(CimdError, match="lookup timed out"):
                resolver.fetch(f"https://slow{i}.example/client.json")
        elapsed = time.monotonic() - started
        # Only DNS_WORKERS lookups ever started; the rest timed out in the queue.
        assert len(dns.started) == DNS_WORKERS
    finally:
        release.set()
    assert elapsed < 0.05 * (DNS_WORKERS + 2) * 2


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/redirect.json", "redirects"),
        ("/html.json", "application/json"),
        ("/mismatch.json", "does not match"),
        ("/secret.json", "secret"),
        ("/basic.json", "token_endpoint_auth_method"),
        ("/pkjwt.json", "token_endpoint_auth_method"),
        ("/badredirect.json", "loopback"),
        ("/notjson.json", "valid JSON"),
        ("/nested.json", "valid JSON"),
        ("/missing.json", "HTTP 404"),
    ],
)
def test_refused_documents(servers: Servers, path: str, why: str) -> None:
    with pytest.raises(CimdError, match=why):
        loopback_resolver(servers).fetch(f"https://localhost:{servers.https.port}{path}")


def test_a_deeply_nested_document_is_refused_not_raised(servers: Servers) -> None:
    # resolve() is what /authorize and /token call: a refusal is None (unknown client), not a 500.
    assert loopback_resolver(servers).resolve(f"https://localhost:{servers.https.port}/nested.json") is None


def test_claude_metadata_document_is_accepted_with_unsupported_grants_dropped(servers: Servers) -> None:
    url = f"https://localhost:{servers.https.port}/claude.json"
    record, _ = loopback_resolver(servers).fetch(url)
    assert record.client_id == url
    assert record.grant_types == ("authorization_code", "refresh_token")
    assert record.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert record.metadata["client_uri"] == "https://claude.ai"
    assert record.redirect_uris == ("https://claude.ai/api/mcp/auth_callback",)


def test_invisible_characters_are_stripped_from_documents(servers: Servers) -> None:
    record, _ = loopback_resolver(servers).fetch(f"https://localhost:{servers.https.port}/bidi.json")
    assert record.client_name == "Trusted Agent"
    assert record.metadata["client_name"] == "Trusted Agent"
    assert record.metadata["software_id"] == "ab"


def test_record_from_document_requires_an_object() -> None:
    with pytest.raises(CimdError, match="object"):
        record_from_document("https://a.example/c", ["x"])


# ----- caching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 300),
        ("max-age=10", MIN_CACHE_SECONDS),
        ("max-age=600", 600),
        ("public, max-age=999999", MAX_CACHE_SECONDS),
        ("no-cache", MIN_CACHE_SECONDS),
        ("max-age=abc", MIN_CACHE_SECONDS),
        ("no-store", None),
        ("max-age=600, no-store", None),
    ],
)
def test_cache_control_is_clamped(header: str | None, expected: int | None) -> None:
    assert cache_seconds(header) == expected


class StubResolver(CimdResolver):
    """The cache logic with a scripted fetch and a fake clock."""

    def __init__(self, ttl: int | None, fail: bool = False, **kw: Any) -> None:
        self.now = 1000.0
        super().__init__(clock=lambda: self.now, **kw)
        self.ttl = ttl
        self.fail = fail
        self.calls = 0

    def fetch(self, client_id: str) -> tuple[ClientRecord, int | None]:
        self.calls += 1
        if self.fail:
            raise CimdError("boom")
        return record_from_document(client_id, document(client_id)), self.ttl


URL = "https://app.example.com/client.json"


def test_cache_honours_clamped_lifetime() -> None:
    stub = StubResolver(ttl=cache_seconds("max-age=5"))
    assert stub.resolve(URL) is not None
    stub.now += MIN_CACHE_SECONDS - 1
    stub.resolve(URL)
    assert stub.calls == 1
    stub.now += 2
    stub.resolve(URL)
    assert stub.calls == 2


def test_cache_lifetime_never_exceeds_a_day() -> None:
    stub = StubResolver(ttl=cache_seconds("max-age=31536000"))
    stub.resolve(URL)
    stub.now += MAX_CACHE_SECONDS - 1
    stub.resolve(URL)
    assert stub.calls == 1
    stub.now += 2
    stub.resolve(URL)
    assert stub.calls == 2


def test_no_store_is_not_cached() -> None:
    stub = StubResolver(ttl=None)
    stub.resolve(URL)
    stub.resolve(URL)
    assert stub.calls == 2


def test_failures_are_cached_briefly() -> None:
    stub = StubResolver(ttl=600, fail=True)
    assert stub.resolve(URL) is None
    stub.now += FAILURE_CACHE_SECONDS - 1
    assert stub.resolve(URL) is None
    assert stub.calls == 1
    stub.now += 2
    stub.fail = False
    assert stub.resolve(URL) is not None
    assert stub.calls == 2


def test_cache_is_bounded_in_entries() -> None:
    stub = StubResolver(ttl=600, max_entries=2)
    for i in range(3):
        stub.resolve(f"https://app.example.com/c{i}.json")
    assert stub.calls == 3
    stub.resolve("https://app.example.com/c2.json")
    stub.resolve("https://app.example.com/c1.json")
    assert stub.calls == 3  # the two newest are cached
    stub.resolve("https://app.example.com/c0.json")
    assert stub.calls == 4  # the oldest was evicted
