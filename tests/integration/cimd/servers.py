"""A loopback CIMD document server with TLS from a throwaway CA (made with ``cryptography``),
and the fetchers and settings that trust it. Only loopback addresses are ever contacted."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.cimd_fetch import DocumentFetcher
from functions.core.platform.settings import FacadeSettings
from tests.cimd_support import document
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
        elif path.startswith("/status/"):  # /status/503: that status, no document
            status, body = int(path.rsplit("/", 1)[1]), b"{}"
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


def running_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """An https and an http document server on loopback, stopped when the generator ends."""
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


def loopback_resolver(servers: Servers, *, redirect_patterns: tuple[str, ...] = (), **kw: Any) -> CimdResolver:
    """A resolver whose fetcher admits loopback and trusts the servers' CA (``kw``: fetcher options)."""
    kw.setdefault("allow_loopback", True)
    kw.setdefault("ca_file", servers.ca_file)
    return CimdResolver(DocumentFetcher(**kw), redirect_patterns=redirect_patterns)


def facade_settings(servers: Servers, **kw: Any) -> FacadeSettings:
    """Facade settings whose CIMD fetcher admits loopback and trusts the servers' CA."""
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
