"""Client ID Metadata Documents for the CIMD tests, and a scripted ``getaddrinfo``."""

from __future__ import annotations

import json
import socket
from typing import Any

# A document URL on loopback over http (INSECURE_CIMD_LOOPBACK, as the local tests): what the
# ``net`` fixture (tests/unit/conftest.py) serves.
URL = "http://localhost/client.json"


def document(client_id: str, **extra: Any) -> dict[str, Any]:
    """A valid public client's metadata document for ``client_id``, with ``extra`` members."""
    return {
        "client_id": client_id,
        "client_name": "CIMD Agent",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


def fake_dns(mapping: dict[str, list[str]]) -> Any:
    """A ``getaddrinfo`` answering from ``mapping`` (host -> addresses); ``.calls`` lists the hosts asked."""
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


def http_answer(status: int = 200, body: bytes = b"", content_type: str = "application/json") -> bytes:
    """The raw bytes of one HTTP/1.1 answer (``Cache-Control: no-store``: each resolve fetches again)."""
    head = (
        f"HTTP/1.1 {status} Status\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class FakeNetwork:
    """``getaddrinfo`` and ``socket.create_connection`` for a real ``DocumentFetcher``, with no traffic.

    Every host resolves to ``address``; a connection is one end of a ``socket.socketpair`` whose
    other end already holds ``answer`` (default: the valid document of the URL ``url``). ``fault``,
    when set, is raised instead: by the lookup if it is a ``socket.gaierror``, else by the connect.
    ``lookups`` and ``connects`` count the calls; ``close()`` closes the peers.
    """

    def __init__(self, url: str, address: str = "127.0.0.1") -> None:
        self.url = url
        self.address = address
        self.fault: BaseException | None = None
        self.answer: bytes | None = None
        self.lookups = 0
        self.connects = 0
        self._peers: list[socket.socket] = []

    def getaddrinfo(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        self.lookups += 1
        if isinstance(self.fault, socket.gaierror):
            raise self.fault
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port))]

    def create_connection(self, address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        self.connects += 1
        if self.fault is not None:
            raise self.fault
        ours, theirs = socket.socketpair()
        theirs.sendall(
            self.answer if self.answer is not None else http_answer(body=json.dumps(document(self.url)).encode())
        )
        self._peers.append(theirs)
        return ours

    def close(self) -> None:
        for peer in self._peers:
            peer.close()
