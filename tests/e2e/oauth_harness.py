"""What an agent's user and host provide in an OAuth flow, simulated headlessly.

* ``Browser``: follows the authorization URL like a person's browser: the kit's
  /authorize, the Cognito managed-login form (filled in), the kit's consent page (approve
  or deny), until the redirect to the agent's redirect URI; cookies are kept.
* ``MemoryStorage``: the SDK's ``TokenStorage`` in memory.
* ``CimdServer``: serves a Client ID Metadata Document over HTTPS on loopback with a
  throwaway certificate the kit is told to trust (INSECURE_CIMD_LOOPBACK, test only).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken

from local.html_forms import forms_of


@dataclass
class Browser:
    email: str
    password: str
    approve: bool = True
    consent_pages: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=15)

    async def run(self, url: str, redirect_prefix: str) -> dict[str, list[str]]:
        """Drive the flow from ``url`` until the redirect to the agent; return its query."""
        response = await self.http.get(url)
        for _ in range(12):
            self.visited.append(str(response.url).split("?")[0])
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_prefix):
                    return parse_qs(urlsplit(location).query)
                response = await self.http.get(location)
                continue
            if response.status_code != 200:
                raise AssertionError(f"{response.url} answered {response.status_code}: {response.text[:300]}")
            forms = forms_of(response.text)
            if not forms:
                raise AssertionError(f"no form on {response.url}: {response.text[:300]}")
            form = forms[0]
            data = dict(form.fields)
            if "password" in data:  # the Cognito managed-login form
                data.update(username=self.email, password=self.password)
            else:  # the kit's consent page
                self.consent_pages.append(response.text)
                wanted = "approve" if self.approve else "deny"
                name, value = next((n, v) for n, v in form.buttons if wanted in v.lower() or wanted in n.lower())
                data[name] = value
            target = urljoin(str(response.url), form.action or str(response.url))
            response = await self.http.post(target, data=data)
        raise AssertionError("authorization flow did not finish: " + " -> ".join(self.visited))

    async def aclose(self) -> None:
        await self.http.aclose()


class HeadlessAgentUser:
    """The SDK's redirect and callback handlers, backed by a ``Browser``."""

    def __init__(self, browser: Browser, redirect_uri: str) -> None:
        self.browser = browser
        self.redirect_uri = redirect_uri
        self.authorization_urls: list[str] = []
        self.results: list[dict[str, list[str]]] = []

    async def redirect_handler(self, url: str) -> None:
        self.authorization_urls.append(url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = await self.browser.run(self.authorization_urls[-1], self.redirect_uri)
        self.results.append(query)
        if "error" in query:
            raise AssertionError(f"authorization failed: {query}")
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0], iss=query["iss"][0])


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def make_loopback_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 (test-only trust anchor)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cimd-cert.pem", directory / "cimd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class CimdServer:
    """HTTPS on 127.0.0.1: GET <path> returns the registered JSON document."""

    def __init__(self, cert: Path, key: Path) -> None:
        documents: dict[str, bytes] = {}
        self.documents = documents
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = documents.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def publish(self, path: str, document: dict[str, Any]) -> str:
        self.documents[path] = json.dumps(document).encode()
        return self.url(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
