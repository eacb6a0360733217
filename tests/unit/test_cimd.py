"""Client ID Metadata Documents, the policy: URL rules, document rules, caching (no sockets;
the fetch itself is tested against loopback servers in tests/integration/cimd/)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients.cimd import (
    FAILURE_CACHE_SECONDS,
    MAX_CACHE_SECONDS,
    MIN_CACHE_SECONDS,
    CimdResolver,
    cache_seconds,
    parse_client_id_url,
    record_from_document,
)
from functions.core.clients.cimd_fetch import CimdError
from functions.core.clients.ids import looks_like_url
from functions.core.clients.records import ClientRecord
from tests.cimd_support import document

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


def test_record_from_document_applies_redirect_patterns() -> None:
    url = "https://app.example.com/client.json"
    doc = document(url, redirect_uris=["https://evil.com/.corp.example/cb"])
    assert record_from_document(url, doc).redirect_uris == ("https://evil.com/.corp.example/cb",)
    with pytest.raises(CimdError, match="policy"):
        record_from_document(url, doc, redirect_patterns=("https://*.corp.example/*",))


def test_record_from_document_requires_an_object() -> None:
    with pytest.raises(CimdError, match="object"):
        record_from_document("https://a.example/c", ["x"])


def test_a_document_with_a_wrongly_typed_field_is_refused_not_raised() -> None:
    # An array application_type made validation raise TypeError: a 500 at /authorize and
    # /token, never cached, so every request fetched the document again.
    url = "https://app.example.com/client.json"
    with pytest.raises(CimdError, match="application_type"):
        record_from_document(url, document(url, application_type=["native"]))
    stub = StubResolver(ttl=300, document_fields={"application_type": {"web": 1}})
    assert stub.resolve(url) is None
    assert stub.resolve(url) is None
    assert stub.calls == 1  # the refusal is cached like any other (FAILURE_CACHE_SECONDS)


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

    def __init__(
        self, ttl: int | None, fail: bool = False, document_fields: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        self.now = 1000.0
        super().__init__(clock=lambda: self.now, **kw)
        self.ttl = ttl
        self.fail = fail
        self.document_fields = document_fields or {}
        self.calls = 0

    def fetch(self, client_id: str) -> tuple[ClientRecord, int | None]:
        self.calls += 1
        if self.fail:
            raise CimdError("boom")
        return record_from_document(client_id, document(client_id, **self.document_fields)), self.ttl


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
