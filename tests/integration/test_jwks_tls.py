"""The JWKS fetch: one verifying TLS context per container for https, none for loopback http."""

from __future__ import annotations

import ssl
import urllib.request
from typing import Any

import pytest

from functions.core.cognito import jwks
from functions.core.platform.errors import DependencyError


def test_https_fetches_share_one_verifying_context(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_urlopen(request: urllib.request.Request, *, timeout: float, context: ssl.SSLContext) -> Any:
        seen.append(context)
        raise OSError("no network in unit tests")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    for _ in range(2):
        with pytest.raises(DependencyError):
            jwks.fetch_jwks("https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json")
    assert len(seen) == 2 and seen[0] is seen[1] is jwks.tls_context()
    # Certificates and host names are verified (RFC 9110 section 4.3.4; RFC 6125).
    assert seen[0].verify_mode == ssl.CERT_REQUIRED and seen[0].check_hostname


def test_plain_http_builds_no_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    jwks.tls_context.cache_clear()
    with pytest.raises(DependencyError):
        jwks.fetch_jwks("http://127.0.0.1:9/jwks.json", timeout=0.5)  # refused
    assert jwks.tls_context.cache_info().currsize == 0
