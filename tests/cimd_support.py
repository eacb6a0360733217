"""Client ID Metadata Documents for the CIMD tests, and a scripted ``getaddrinfo``."""

from __future__ import annotations

import socket
from typing import Any


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
