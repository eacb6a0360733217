"""Client ID Metadata Documents (CIMD): a ``client_id`` that is an https URL names its metadata.

MCP authorization spec 2025-11-25, "Client ID Metadata Documents", and
draft-ietf-oauth-client-id-metadata-document. This module is the policy; the SSRF-safe,
deadline-bounded socket work is ``functions.core.clients.cimd_fetch``:

* the URL must be https with a non-root path, no userinfo, no fragment, no dot segments;
* the answer must be 200 (redirects are not followed) and ``application/json``;
* the document's ``client_id`` must equal the URL exactly, and it is validated like DCR
  metadata (including the operator's redirect URI patterns), public clients only
  (``token_endpoint_auth_method`` = ``none``);
* results are cached in memory, bounded in entries, for ``max-age`` clamped to
  60 s .. 1 day (``no-store``: not cached); refusals for 30 s so a bad URL is not hammered.

A failure to get the document is either a refusal (``CimdError``: the client is unknown) or
transient (``CimdUnavailable``: timeout, temporary DNS failure, refused or reset connection,
HTTP 408, 429 or 5xx): ``resolve`` raises it so the caller answers 503 "retry", never "unknown
client" (an MCP client told ``invalid_client`` discards its tokens). A transient failure is
cached for ``UNAVAILABLE_CACHE_SECONDS`` only (the ``Retry-After`` the callers send), as itself:
a down host is asked at most once per period per container, and a cached outage never becomes
a cached unknown client.

With the fetcher's ``allow_loopback`` (setting INSECURE_CIMD_LOOPBACK, local tests only),
http:// URLs on loopback hosts are admitted too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from functions.core.clients.cimd_fetch import CimdError, CimdUnavailable, ClientIdUrl, DocumentFetcher
from functions.core.clients.ids import looks_like_url
from functions.core.clients.metadata import validate_client_metadata
from functions.core.clients.records import ClientRecord
from functions.core.oauth.uris import LOOPBACK_HOSTS, MAX_URI_LENGTH, split_uri
from functions.core.platform.errors import RETRY_AFTER_SECONDS, OAuthError
from functions.core.platform.metrics import count
from functions.core.platform.observability import logger

MIN_CACHE_SECONDS: Final = 60
MAX_CACHE_SECONDS: Final = 86_400
DEFAULT_CACHE_SECONDS: Final = 300  # no Cache-Control at all
FAILURE_CACHE_SECONDS: Final = 30
# A transient failure: cached as long as the Retry-After the callers answer, so the retry the
# client makes then fetches again, and a host that is down is not asked by every request.
UNAVAILABLE_CACHE_SECONDS: Final = RETRY_AFTER_SECONDS
MAX_CACHE_ENTRIES: Final = 256

__all__ = [
    "CimdError",
    "CimdResolver",
    "CimdUnavailable",
    "looks_like_url",
    "parse_client_id_url",
    "record_from_document",
]


def parse_client_id_url(url: str, *, allow_insecure_loopback: bool = False) -> ClientIdUrl:
    """Check the client identifier URL rules (CIMD draft, "Client Identifier URL"); ``CimdError`` if broken."""
    if len(url) > MAX_URI_LENGTH:
        raise CimdError("client_id URL is too long")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise CimdError("client_id URL must be ASCII without whitespace or control characters")
    parts = split_uri(url)
    if parts is None:
        raise CimdError("client_id URL is malformed")
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
    return ClientIdUrl(url, parts.scheme, host, parts.port or default_port, target)


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


def transient_status(status: int) -> bool:
    """True for an HTTP status a later try can get past: 408 Request Timeout, 429 Too Many
    Requests, any 5xx (RFC 9110 sections 15.5.9 and 15.6, RFC 6585 section 4)."""
    return status in (408, 429) or 500 <= status <= 599


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class CimdResolver:
    """Fetch, validate and cache Client ID Metadata Documents (one per container).

    ``clock``: monotonic seconds, for the cache only. ``fetcher``: the socket-level fetch
    (default: a ``DocumentFetcher`` with the default CA store and no loopback).
    """

    def __init__(
        self,
        fetcher: DocumentFetcher | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHE_ENTRIES,
        redirect_patterns: Sequence[str] = (),
    ) -> None:
        self.fetcher = fetcher or DocumentFetcher()
        self._redirect_patterns = tuple(redirect_patterns)
        self._clock = clock
        self._max_entries = max_entries
        # Entry: (expiry in monotonic seconds, the record | None for a refusal | the transient failure).
        self._cache: OrderedDict[str, tuple[float, ClientRecord | CimdUnavailable | None]] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, client_id: str) -> ClientRecord | None:
        """The client described by the document at ``client_id``, or None if refused (fail closed, logged).

        Raises ``CimdUnavailable`` when the document cannot be fetched for now (transient,
        module docstring), also from the cache for ``UNAVAILABLE_CACHE_SECONDS``: the caller
        answers 503 with ``Retry-After``, never "unknown client".
        """
        now = self._clock()
        with self._lock:
            hit = self._cache.get(client_id)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(client_id)
                cached = hit[1]
                if isinstance(cached, CimdUnavailable):
                    raise CimdUnavailable(str(cached))
                return cached
        try:
            record, ttl = self.fetch(client_id)
        except CimdUnavailable as exc:
            logger.warning("client metadata document unavailable", extra={"reason": str(exc)})
            count("CimdFetchFailures", outcome="unavailable")
            self._remember(client_id, now + UNAVAILABLE_CACHE_SECONDS, exc)
            raise
        except CimdError as exc:
            logger.warning("client metadata document refused", extra={"reason": str(exc)})
            count("CimdFetchFailures", outcome="refused")
            record, ttl = None, FAILURE_CACHE_SECONDS
        if ttl is not None:
            self._remember(client_id, now + ttl, record)
        return record

    def _remember(self, client_id: str, expires: float, outcome: ClientRecord | CimdUnavailable | None) -> None:
        """Cache ``outcome`` until ``expires`` (monotonic seconds), evicting the least recently used."""
        with self._lock:
            self._cache.pop(client_id, None)
            while len(self._cache) >= self._max_entries:
                self._cache.popitem(last=False)
            self._cache[client_id] = (expires, outcome)

    def fetch(self, client_id: str) -> tuple[ClientRecord, int | None]:
        """Fetch and validate without the cache: the record and its cache lifetime (seconds; None: no-store).

        Raises ``CimdError`` naming the rule the URL, the answer or the document broke, or
        ``CimdUnavailable`` when a later try can succeed (the fetcher's transient failures,
        HTTP 408, 429 and 5xx).
        """
        url = parse_client_id_url(client_id, allow_insecure_loopback=self.fetcher.allow_loopback)
        answer = self.fetcher.get(url)
        if transient_status(answer.status):
            raise CimdUnavailable(f"document host answered HTTP {answer.status}")
        # CIMD draft: the document is served with 200; redirects are not followed.
        if 300 <= answer.status < 400:
            raise CimdError("redirects are not followed for client metadata documents")
        if answer.status != 200:
            raise CimdError(f"document fetch answered HTTP {answer.status}")
        if not _is_json(answer.content_type):
            raise CimdError("document is not served as application/json")
        try:
            document = json.loads(answer.body.decode("utf-8"))
        # RecursionError: a 5 KB body can nest 2,000 levels deep; the C parser then gives up
        # with RecursionError, not ValueError. Either way the document is refused, never a 500.
        except (ValueError, RecursionError) as exc:
            raise CimdError("document is not valid JSON") from exc
        record = record_from_document(client_id, document, redirect_patterns=self._redirect_patterns)
        return record, cache_seconds(answer.cache_control)
