"""Registration function (RFC 7591 / RFC 7592) with in-memory store and rate limiter.

Each rule has a test here; the same flows run against DynamoDB (moto) in
tests/integration/test_registration.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from functions.core.clients.store import CLIENT_PREFIX, DEDUPE_PREFIX, MAX_REGISTRATION_TOKENS
from functions.core.clients.store_memory import InMemoryClientStore
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import DependencyError
from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import RegistrationSettings
from functions.core.state.ratelimit import InMemoryRateLimiter
from functions.registration.api import make_handler
from functions.registration.service import DEDUPE_RATE_FACTOR, RegistrationService
from local.gateway import build_event
from tests.helpers import BASE_URL, CLAUDE_METADATA, FakeContext

PUBLIC: dict[str, Any] = {
    "client_name": "Agent",
    "redirect_uris": ["http://127.0.0.1:3000/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
    "scope": "notes:read",
}
CONFIDENTIAL: dict[str, Any] = {**PUBLIC, "token_endpoint_auth_method": "client_secret_post"}


def event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    template = "/register/{client_id}" if path.startswith("/register/") else path
    route = next(r for r in ROUTES if r.method == method and r.path == template)
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = {"content-type": "application/json", **(headers or {})}
    params = {"client_id": path.rsplit("/", 1)[1]} if template != path else None
    return build_event(
        method=method,
        path=path,
        raw_query="",
        headers=list(hdrs.items()),
        body=raw,
        route=route,
        params=params,
        source_ip=source_ip,
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


class Kit:
    def __init__(self, **settings: Any) -> None:
        values: dict[str, Any] = {"base_url": BASE_URL, "clients_table": "clients", "artefacts_table": "artefacts"}
        values.update(settings)
        self.settings = RegistrationSettings(**values)
        self.now = 1_800_000_000.0
        self.store = InMemoryClientStore(idle_days=self.settings.client_idle_days)
        self.limiter = InMemoryRateLimiter(clock=lambda: self.now)
        self.service = RegistrationService(self.settings, self.store, self.limiter, clock=lambda: self.now)
        self.app = make_handler(lambda: self.service)

    def call(self, method: str, path: str, **kw: Any) -> Reply:
        result = self.app(event(method, path, **kw), FakeContext())
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for k, values in (result.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = ",".join(values)
        return Reply(int(result["statusCode"]), headers, str(result.get("body") or ""))

    def register(self, body: Any, **kw: Any) -> Reply:
        return self.call("POST", "/register", body=body, **kw)

    def manage(self, method: str, client_id: str, token: str | None, body: Any = None) -> Reply:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return self.call(method, f"/register/{client_id}", headers=headers, body=body)

    def client_items(self) -> list[dict[str, Any]]:
        return [v for k, v in self.store.items.items() if k.startswith(CLIENT_PREFIX)]


@pytest.fixture
def kit() -> Kit:
    return Kit()


def assert_nothing_stored(kit: Kit) -> None:
    assert kit.store.items == {}


# ----- POST /register ---------------------------------------------------------------------


def test_public_registration(kit: Kit) -> None:
    reply = kit.register(PUBLIC)
    assert reply.status == 201
    body = reply.json
    assert len(body["client_id"]) == 22  # 128 random bits, base64url
    assert body["client_id_issued_at"] == int(kit.now)
    for key, value in PUBLIC.items():
        assert body[key] == value
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert body["registration_client_uri"] == f"{BASE_URL}/register/{body['client_id']}"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["content-type"] == "application/json"
    [item] = kit.client_items()
    assert item["registration_access_token_hash"] == sha256_hex(body["registration_access_token"])
    assert body["registration_access_token"] not in json.dumps(kit.store.items)
    assert item["ttl"] == int(kit.now) + 30 * 86_400
    assert kit.store.counted(kit.now) == 1


def test_confidential_registration_gets_a_hashed_secret(kit: Kit) -> None:
    body = kit.register(CONFIDENTIAL).json
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert len(body["client_secret"]) >= 43  # 256 bits
    assert body["client_secret_expires_at"] == 0
    [item] = kit.client_items()
    assert item["client_secret_hash"] == sha256_hex(body["client_secret"])
    assert body["client_secret"] not in json.dumps(kit.store.items)
    assert item["dedupe_key"] is None
    assert not any(k.startswith(DEDUPE_PREFIX) for k in kit.store.items)


def test_identical_public_registrations_share_a_client_id(kit: Kit) -> None:
    first = kit.register(PUBLIC).json
    second = kit.register({**PUBLIC, "redirect_uris": list(PUBLIC["redirect_uris"])}).json
    assert second["client_id"] == first["client_id"]
    assert second["client_id_issued_at"] == first["client_id_issued_at"]
    assert len(kit.client_items()) == 1
    assert kit.store.counted(kit.now) == 1
    # Each registrant gets its own token, and both keep read access (RFC 7592 section 3).
    assert second["registration_access_token"] != first["registration_access_token"]
    assert kit.manage("GET", first["client_id"], first["registration_access_token"]).status == 200
    assert kit.manage("GET", first["client_id"], second["registration_access_token"]).status == 200


def test_reordered_metadata_is_deduplicated(kit: Kit) -> None:
    a = kit.register({**PUBLIC, "redirect_uris": ["https://a.example/1", "https://a.example/2"]}).json
    b = kit.register(
        {
            **PUBLIC,
            "redirect_uris": ["https://a.example/2", "https://a.example/1"],
            "grant_types": ["refresh_token", "authorization_code"],
        }
    ).json
    assert a["client_id"] == b["client_id"]


def test_different_public_metadata_gets_a_new_client(kit: Kit) -> None:
    a = kit.register(PUBLIC).json
    b = kit.register({**PUBLIC, "client_name": "Other"}).json
    assert a["client_id"] != b["client_id"]
    assert kit.store.counted(kit.now) == 2


def test_confidential_clients_are_never_deduplicated(kit: Kit) -> None:
    a = kit.register(CONFIDENTIAL).json
    b = kit.register(CONFIDENTIAL).json
    assert a["client_id"] != b["client_id"]
    assert kit.store.counted(kit.now) == 2


def test_dedupe_of_an_idle_expired_client_registers_anew(kit: Kit) -> None:
    a = kit.register(PUBLIC).json
    kit.now += 31 * 86_400
    b = kit.register(PUBLIC).json
    assert b["client_id"] != a["client_id"]
    assert (
        kit.store.items[DEDUPE_PREFIX + kit.store.items[CLIENT_PREFIX + b["client_id"]]["dedupe_key"]]["client_id"]
        == b["client_id"]
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**PUBLIC, "redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({**PUBLIC, "redirect_uris": ["https://app.example.com/cb#x"]}, "invalid_redirect_uri"),
        ({**PUBLIC, "redirect_uris": []}, "invalid_redirect_uri"),
        ({k: v for k, v in PUBLIC.items() if k != "redirect_uris"}, "invalid_redirect_uri"),
        ({**PUBLIC, "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({**PUBLIC, "response_types": ["token"]}, "invalid_client_metadata"),
        ({**PUBLIC, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({**PUBLIC, "scope": 7}, "invalid_client_metadata"),
        ({**PUBLIC, "client_name": "x" * 500}, "invalid_client_metadata"),
        ([PUBLIC], "invalid_client_metadata"),
        (b"{not json", "invalid_client_metadata"),
        (
            b'{"redirect_uris": ["https://a.example/cb"], "redirect_uris": ["https://b.example/cb"]}',
            "invalid_client_metadata",
        ),
        (json.dumps({**PUBLIC, "client_name": "x" * 17_000}).encode(), "invalid_client_metadata"),
    ],
)
def test_rejected_registration_stores_nothing(kit: Kit, body: Any, error: str) -> None:
    reply = kit.register(body)
    assert reply.status == 400
    assert reply.json["error"] == error
    assert reply.json["error_description"]
    assert_nothing_stored(kit)


def test_body_size_bound(kit: Kit) -> None:
    padded = {**PUBLIC, "software_id": "s", "padding": "p" * (16 * 1024)}
    reply = kit.register(padded)
    assert reply.status == 400
    assert "larger" in reply.json["error_description"]
    assert_nothing_stored(kit)


def test_non_json_content_type_is_refused(kit: Kit) -> None:
    reply = kit.register(PUBLIC, headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply.status == 400
    assert_nothing_stored(kit)


def test_binary_body_is_refused(kit: Kit) -> None:
    reply = kit.register(b"\xff\xfe\x00binary", headers={"content-type": "application/octet-stream"})
    assert reply.status == 400
    assert reply.json["error"] == "invalid_client_metadata"
    assert_nothing_stored(kit)


@pytest.mark.parametrize(("policy", "instead"), [("cimd-only", "Client ID Metadata Document"), ("closed", "operator")])
def test_registration_not_offered_is_404_and_stores_nothing(policy: str, instead: str) -> None:
    """RFC 8414 s2: without RFC 7591 registration there is no registration endpoint."""
    kit = Kit(registration_policy=policy)
    for body in (PUBLIC, {**PUBLIC, "token_endpoint_auth_method": "client_secret_post"}):
        reply = kit.register(body)
        assert reply.status == 404
        assert reply.json["error"] == "invalid_request"
        assert instead in reply.json["error_description"]
    assert_nothing_stored(kit)
    assert kit.limiter.counts == {}


def test_registration_policy_is_an_enum_at_cold_start() -> None:
    with pytest.raises(ValidationError, match="registration_policy"):
        Kit(registration_policy="closd")
    assert Kit(registration_policy="open").register(PUBLIC).status == 201


def test_operator_redirect_patterns() -> None:
    kit = Kit(redirect_patterns="http://127.0.0.1:*/callback,https://*.corp.example/*")
    assert kit.register(PUBLIC).status == 201
    reply = kit.register({**PUBLIC, "redirect_uris": ["https://evil.example/cb"]})
    assert reply.status == 400
    assert reply.json["error"] == "invalid_redirect_uri"
    assert len(kit.client_items()) == 1


def test_rate_limit_per_source_ip() -> None:
    kit = Kit(registration_rate_per_minute=2)
    kit.now = 1_800_000_010.0  # 50 s before the minute ends
    assert kit.register(PUBLIC, source_ip="203.0.113.1").status == 201
    assert kit.register(CONFIDENTIAL, source_ip="203.0.113.1").status == 201
    reply = kit.register({**PUBLIC, "client_name": "third"}, source_ip="203.0.113.1")
    assert reply.status == 429
    assert reply.headers["retry-after"] == "50"
    assert reply.json["error"] == "temporarily_unavailable"
    assert len(kit.client_items()) == 2
    assert kit.register({**PUBLIC, "client_name": "other ip"}, source_ip="203.0.113.2").status == 201
    kit.now += 60  # next window
    assert kit.register({**PUBLIC, "client_name": "later"}, source_ip="203.0.113.1").status == 201


def test_max_clients() -> None:
    kit = Kit(max_clients=2)
    first = kit.register(CONFIDENTIAL).json
    kit.register(CONFIDENTIAL)
    reply = kit.register(CONFIDENTIAL)
    assert reply.status == 403
    assert "maximum number of registered clients" in reply.json["error_description"]
    assert len(kit.client_items()) == 2
    # RFC 7592 DELETE counts down, so a new registration fits again.
    assert kit.manage("DELETE", first["client_id"], first["registration_access_token"]).status == 204
    assert kit.store.counted(kit.now) == 1
    assert kit.register(CONFIDENTIAL).status == 201


def test_max_clients_idle_expired_clients_free_capacity() -> None:
    kit = Kit(max_clients=2)
    kit.register(CONFIDENTIAL)
    kit.now += 20 * 86_400
    kit.register(CONFIDENTIAL)
    assert kit.register(CONFIDENTIAL).status == 403
    kit.now += 15 * 86_400  # the first client idled out: its expiry bucket ended, nothing counted down
    assert kit.store.counted(kit.now) == 1
    assert kit.register(CONFIDENTIAL).status == 201
    assert kit.store.counted(kit.now) == 2


# ----- RFC 7592 ---------------------------------------------------------------------------


def test_read_client_configuration(kit: Kit) -> None:
    reg = kit.register(CONFIDENTIAL).json
    reply = kit.manage("GET", reg["client_id"], reg["registration_access_token"])
    assert reply.status == 200
    body = reply.json
    assert body["client_id"] == reg["client_id"]
    assert body["redirect_uris"] == CONFIDENTIAL["redirect_uris"]
    assert body["registration_access_token"] == reg["registration_access_token"]
    assert body["registration_client_uri"] == reg["registration_client_uri"]
    assert "client_secret" not in body  # only its hash exists
    assert body["client_secret_expires_at"] == 0
    assert reply.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_management_requires_the_registration_access_token(kit: Kit, method: str) -> None:
    reg = kit.register(PUBLIC).json
    other = kit.register({**PUBLIC, "client_name": "Other"}).json
    body = {**PUBLIC, "client_id": reg["client_id"]}
    cid = reg["client_id"]
    for token in (None, "wrong-token", other["registration_access_token"]):
        reply = kit.manage(method, cid, token, body if method == "PUT" else None)
        assert reply.status == 401
        assert reply.json["error"] == "invalid_token"
        assert reply.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # A non-Bearer scheme is not a registration access token.
    basic = kit.call(method, f"/register/{cid}", headers={"authorization": "Basic " + reg["registration_access_token"]})
    assert basic.status == 401
    # An unknown client gets the same answer as a wrong token (RFC 7592 section 2.1).
    assert kit.manage(method, "A" * 22, reg["registration_access_token"], body).status == 401
    assert kit.manage(method, "not!an!id", reg["registration_access_token"], body).status == 401
    assert kit.manage("GET", cid, reg["registration_access_token"]).json["client_name"] == "Agent"


def test_update_replaces_metadata(kit: Kit) -> None:
    reg = kit.register(CONFIDENTIAL).json
    token = reg["registration_access_token"]
    update = {
        "client_id": reg["client_id"],
        "redirect_uris": ["http://127.0.0.1:4000/new"],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code"],
    }
    reply = kit.manage("PUT", reg["client_id"], token, update)
    assert reply.status == 200
    body = reply.json
    assert body["redirect_uris"] == ["http://127.0.0.1:4000/new"]
    assert "client_name" not in body  # omitted fields are deleted (RFC 7592 section 2.2)
    assert "scope" not in body
    assert "client_secret" not in body  # the secret is kept, and only its hash exists
    assert body["registration_access_token"] == token
    assert body["client_id_issued_at"] == reg["client_id_issued_at"]
    read = kit.manage("GET", reg["client_id"], token).json
    assert read["redirect_uris"] == ["http://127.0.0.1:4000/new"]
    assert "client_name" not in read
    item = kit.store.items[CLIENT_PREFIX + reg["client_id"]]
    assert item["client_secret_hash"] == sha256_hex(reg["client_secret"])


# ----- RFC 7592 on shared (public) registrations: read-only --------------------------------


def assert_shared_read_only(reply: Reply) -> None:
    assert reply.status == 403
    assert reply.json["error"] == "access_denied"
    assert "shared" in reply.json["error_description"]
    assert reply.headers["content-type"] == "application/json"


def test_dedupe_takeover_of_a_public_client_is_refused(kit: Kit) -> None:
    """The review's exploit: register the victim's public metadata, then PUT or DELETE."""
    victim = kit.register(PUBLIC).json
    attacker = kit.register(PUBLIC).json  # identical metadata: same client_id, fresh token
    cid, token = attacker["client_id"], attacker["registration_access_token"]
    assert cid == victim["client_id"]
    before = json.dumps(kit.store.items, sort_keys=True)
    evil = {**PUBLIC, "client_id": cid, "redirect_uris": ["https://evil.example/cb"]}
    assert_shared_read_only(kit.manage("PUT", cid, token, evil))
    assert_shared_read_only(kit.manage("DELETE", cid, token))
    assert json.dumps(kit.store.items, sort_keys=True) == before  # nothing changed
    read = kit.manage("GET", cid, token)  # reads still work for the current token holder
    assert read.status == 200 and read.json["redirect_uris"] == PUBLIC["redirect_uris"]


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": ["http://127.0.0.1:4000/new"]},  # a valid update
        {**CONFIDENTIAL},  # becoming confidential
        {"client_secret": "\ud800"},  # hostile input changes nothing either
    ],
)
def test_public_registration_cannot_be_updated(kit: Kit, body: dict[str, Any]) -> None:
    reg = kit.register(PUBLIC).json
    cid = reg["client_id"]
    before = json.dumps(kit.store.items, sort_keys=True)
    assert_shared_read_only(
        kit.manage("PUT", cid, reg["registration_access_token"], {**PUBLIC, **body, "client_id": cid})
    )
    assert json.dumps(kit.store.items, sort_keys=True) == before


def test_public_registration_cannot_be_deleted(kit: Kit) -> None:
    reg = kit.register(PUBLIC).json
    assert_shared_read_only(kit.manage("DELETE", reg["client_id"], reg["registration_access_token"]))
    assert len(kit.client_items()) == 1 and kit.store.counted(kit.now) == 1
    assert kit.register(PUBLIC).json["client_id"] == reg["client_id"]  # still deduplicated


def test_wrong_token_on_a_public_client_is_still_401(kit: Kit) -> None:
    # Authentication first: a 403 must not tell strangers that a client id exists.
    reg = kit.register(PUBLIC).json
    assert kit.manage("PUT", reg["client_id"], "wrong", {**PUBLIC, "client_id": reg["client_id"]}).status == 401
    assert kit.manage("DELETE", reg["client_id"], "wrong").status == 401


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"client_id": "someone-else-0000000000"}, "invalid_client_metadata"),
        ({"client_id": None}, "invalid_client_metadata"),
        ({"registration_access_token": "x"}, "invalid_client_metadata"),
        ({"registration_client_uri": "x"}, "invalid_client_metadata"),
        ({"client_id_issued_at": 1}, "invalid_client_metadata"),
        ({"client_secret_expires_at": 0}, "invalid_client_metadata"),
        ({"client_secret": "my-own-choice"}, "invalid_client_metadata"),
    ],
)
def test_invalid_update_changes_nothing(kit: Kit, change: dict[str, Any], error: str) -> None:
    reg = kit.register(CONFIDENTIAL).json
    before = json.dumps(kit.store.items, sort_keys=True)
    body = {**CONFIDENTIAL, "client_id": reg["client_id"], **change}
    body = {k: v for k, v in body.items() if v is not None}
    reply = kit.manage("PUT", reg["client_id"], reg["registration_access_token"], body)
    assert reply.status == 400
    assert reply.json["error"] == error
    assert json.dumps(kit.store.items, sort_keys=True) == before


def _raw_call(kit: Kit, method: str, path: str, token: str, body: str, b64: bool = False) -> Reply:
    ev = event(method, path, headers={"authorization": f"Bearer {token}"})
    ev["body"], ev["isBase64Encoded"] = body, b64
    result = kit.app(ev, FakeContext())
    return Reply(int(result["statusCode"]), {}, str(result.get("body") or ""))


@pytest.mark.parametrize(
    ("make_body", "b64", "status", "error"),
    [
        # A lone surrogate in client_secret (UnicodeEncodeError in sha256_hex: a 500 before).
        (
            lambda cid: json.dumps({**CONFIDENTIAL, "client_id": cid, "client_secret": "\ud800"}),
            False,
            400,
            "invalid_client_metadata",
        ),
        (
            lambda cid: json.dumps({**CONFIDENTIAL, "client_id": cid, "client_secret": "\ud800"}, ensure_ascii=False),
            False,
            400,
            "invalid_client_metadata",
        ),
        (
            lambda cid: json.dumps({**CONFIDENTIAL, "client_id": cid, "client_secret": "\u00e9"}),
            False,
            400,
            "invalid_client_metadata",
        ),
        (lambda cid: json.dumps({**CONFIDENTIAL, "client_id": "\ud800"}), False, 400, "invalid_client_metadata"),
        (
            lambda cid: json.dumps({**CONFIDENTIAL, "client_id": cid, "redirect_uris": ["https://\ud800.example/"]}),
            False,
            400,
            "invalid_redirect_uri",
        ),
        (lambda cid: "!!not base64", True, 400, "invalid_client_metadata"),
        (lambda cid: "/+4A", True, 400, "invalid_client_metadata"),  # base64 of non-UTF-8 bytes
    ],
)
def test_hostile_update_bodies_get_rfc7591_errors(
    kit: Kit, make_body: Callable[[str], str], b64: bool, status: int, error: str
) -> None:
    reg = kit.register(CONFIDENTIAL).json
    cid = reg["client_id"]
    before = json.dumps(kit.store.items, sort_keys=True)
    reply = _raw_call(kit, "PUT", f"/register/{cid}", reg["registration_access_token"], make_body(cid), b64)
    assert (reply.status, reply.json["error"]) == (status, error), reply.text
    assert json.dumps(kit.store.items, sort_keys=True) == before


@pytest.mark.parametrize("token", ["\u00e9" * 43, "\ud800", "abc\udfff"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_hostile_registration_access_tokens_are_401(kit: Kit, method: str, token: str) -> None:
    reg = kit.register(CONFIDENTIAL).json
    body = json.dumps({**CONFIDENTIAL, "client_id": reg["client_id"]})
    reply = _raw_call(kit, method, f"/register/{reg['client_id']}", token, body)
    assert reply.status == 401 and reply.json["error"] == "invalid_token"


def test_hostile_registration_bodies_get_rfc7591_errors(kit: Kit) -> None:
    for body, b64 in (("!!not base64", True), ("/+4A", True), ('{"redirect_uris": ["\\ud800"]}', False)):
        ev = event("POST", "/register")
        ev["body"], ev["isBase64Encoded"] = body, b64
        result = kit.app(ev, FakeContext())
        assert 400 <= int(result["statusCode"]) < 500 and json.loads(result["body"])["error"], result
    assert_nothing_stored(kit)


def test_update_with_the_current_secret_keeps_it(kit: Kit) -> None:
    reg = kit.register(CONFIDENTIAL).json
    body = {**CONFIDENTIAL, "client_id": reg["client_id"], "client_secret": reg["client_secret"], "client_name": "B"}
    reply = kit.manage("PUT", reg["client_id"], reg["registration_access_token"], body)
    assert reply.status == 200
    assert "client_secret" not in reply.json
    item = kit.store.items[CLIENT_PREFIX + reg["client_id"]]
    assert item["client_secret_hash"] == sha256_hex(reg["client_secret"])
    assert json.loads(item["metadata"])["client_name"] == "B"


def test_confidential_client_cannot_become_public(kit: Kit) -> None:
    # Public clients are shared and read-only: the owner would lose its own management.
    reg = kit.register(CONFIDENTIAL).json
    cid, token = reg["client_id"], reg["registration_access_token"]
    before = json.dumps(kit.store.items, sort_keys=True)
    reply = kit.manage("PUT", cid, token, {**PUBLIC, "client_id": cid})
    assert reply.status == 400 and reply.json["error"] == "invalid_client_metadata"
    assert json.dumps(kit.store.items, sort_keys=True) == before


def test_delete(kit: Kit) -> None:
    reg = kit.register(CONFIDENTIAL).json
    reply = kit.manage("DELETE", reg["client_id"], reg["registration_access_token"])
    assert reply.status == 204
    assert reply.text == ""
    assert kit.client_items() == []
    assert kit.store.counted(kit.now) == 0
    assert kit.manage("GET", reg["client_id"], reg["registration_access_token"]).status == 401
    assert kit.manage("DELETE", reg["client_id"], reg["registration_access_token"]).status == 401


# ----- HTTP concerns ----------------------------------------------------------------------


def test_cors_preflight_on_register(kit: Kit) -> None:
    reply = kit.call(
        "OPTIONS",
        "/register",
        headers={
            "origin": "https://inspector.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "content-type" in reply.headers["access-control-allow-headers"].lower()
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert_nothing_stored(kit)


def test_cors_headers_on_registration(kit: Kit) -> None:
    reply = kit.register(PUBLIC, headers={"origin": "https://inspector.example"})
    assert reply.status == 201
    assert reply.headers["access-control-allow-origin"] == "*"


class BrokenStore(InMemoryClientStore):
    def get(self, client_id: str, now: int) -> Any:
        raise DependencyError("read client failed: ProvisionedThroughputExceededException")

    def find_by_dedupe(self, dedupe_key: str, now: int) -> Any:
        raise DependencyError("read dedupe failed: InternalServerError")


class BrokenLimiter(InMemoryRateLimiter):
    def hit(self, bucket: str, source_ip: str, limit: int) -> Any:
        raise DependencyError("rate limit failed: InternalServerError")


def test_dependency_failures_answer_503(kit: Kit) -> None:
    kit.service = RegistrationService(kit.settings, BrokenStore(), kit.limiter, clock=lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    for reply in (kit.register(PUBLIC), kit.manage("GET", "A" * 22, "token")):
        assert reply.status == 503
        assert reply.headers["retry-after"] == "5"
        assert reply.json["error"] == "temporarily_unavailable"
    kit.service = RegistrationService(kit.settings, kit.store, BrokenLimiter(), clock=lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    assert kit.register(PUBLIC).status == 503
    assert_nothing_stored(kit)


class FailingOnceStore(InMemoryClientStore):
    """Its first ``create`` fails after the rate limit was counted (a DynamoDB outage)."""

    failed = False

    def create(self, record: Any, *, max_clients: int, now: int) -> Any:
        if not self.failed:
            self.failed = True
            raise DependencyError("register client failed: ProvisionedThroughputExceededException")
        return super().create(record, max_clients=max_clients, now=now)


@pytest.mark.parametrize("meta", [PUBLIC, CONFIDENTIAL], ids=["public", "confidential"])
def test_a_503_gives_back_its_rate_limit_hit(meta: dict[str, Any]) -> None:
    """RFC 9110 section 15.6.4: the retry a 503 invites is not refused as over the limit."""
    kit = Kit(registration_rate_per_minute=1)
    kit.service = RegistrationService(kit.settings, FailingOnceStore(idle_days=30), kit.limiter, lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    assert kit.register(meta).status == 503
    assert kit.register(meta).status == 201
    assert kit.register({**meta, "client_name": "another"}).status == 429  # the limit still holds


def test_secrets_are_not_logged(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    body = kit.register(CONFIDENTIAL).json
    kit.manage("GET", body["client_id"], body["registration_access_token"])
    kit.manage("GET", body["client_id"], "wrong")
    out = capsys.readouterr()
    logged = out.out + out.err
    assert body["client_secret"] not in logged
    assert body["registration_access_token"] not in logged


# ----- shared public clients: every registrant keeps read access (RFC 7592 section 3) ----


def test_every_recent_registrant_of_a_shared_client_keeps_read_access(kit: Kit) -> None:
    replies = [kit.register(PUBLIC).json for _ in range(MAX_REGISTRATION_TOKENS + 2)]
    cid = replies[0]["client_id"]
    assert {r["client_id"] for r in replies} == {cid}
    tokens = [r["registration_access_token"] for r in replies]
    assert len(set(tokens)) == len(tokens)
    # The newest MAX_REGISTRATION_TOKENS tokens read; the two oldest fell out of the bounded list.
    assert [kit.manage("GET", cid, t).status for t in tokens] == [401, 401] + [200] * MAX_REGISTRATION_TOKENS
    [item] = kit.client_items()
    assert item["registration_access_token_hashes"] == [sha256_hex(t) for t in reversed(tokens[2:])]
    stored = json.dumps(kit.store.items)
    assert not any(t in stored for t in tokens)  # hashes only


def test_a_read_returns_the_token_presented(kit: Kit) -> None:
    first = kit.register(PUBLIC).json
    kit.register(PUBLIC)
    read = kit.manage("GET", first["client_id"], first["registration_access_token"]).json
    assert read["registration_access_token"] == first["registration_access_token"]


def test_concurrent_identical_registration_keeps_both_tokens(kit: Kit) -> None:
    """A registrant that read the client before another one added its token re-reads."""
    first = kit.register(PUBLIC).json
    stale = kit.store.find_by_dedupe(kit.client_items()[0]["dedupe_key"], int(kit.now))
    second = kit.register(PUBLIC).json
    assert stale is not None
    assert kit.store.add_registration_token(stale, sha256_hex("late"), int(kit.now)) is None
    for reply in (first, second):
        assert kit.manage("GET", reply["client_id"], reply["registration_access_token"]).status == 200


# ----- the rate limit counts only registrations that create a client ---------------------


def test_identical_public_registrations_do_not_spend_the_rate_limit() -> None:
    kit = Kit(registration_rate_per_minute=2)
    ip = "203.0.113.9"
    first = kit.register(PUBLIC, source_ip=ip).json
    for _ in range(10):  # e.g. many users of one hosted agent behind one egress IP
        reply = kit.register(PUBLIC, source_ip=ip)
        assert reply.status == 201
        assert reply.json["client_id"] == first["client_id"]
    # One client created so far: one more new registration fits, the next does not.
    assert kit.register({**PUBLIC, "client_name": "second"}, source_ip=ip).status == 201
    refused = kit.register({**PUBLIC, "client_name": "third"}, source_ip=ip)
    assert refused.status == 429
    assert len(kit.client_items()) == 2  # the refused registration wrote nothing
    # ...while the existing ones are still returned to this address.
    assert kit.register(PUBLIC, source_ip=ip).status == 201


def test_identical_registrations_have_their_own_larger_bucket() -> None:
    kit = Kit(registration_rate_per_minute=1)  # 10 identical ones a minute: fewer than the 20 kept tokens
    kit.now = 1_800_000_010.0  # 50 s before the minute ends
    ip, victim_ip = "198.51.100.66", "203.0.113.5"
    victim = kit.register(PUBLIC, source_ip=victim_ip).json
    writes = 0
    add = kit.store.add_registration_token

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        writes += 1
        return add(*args, **kwargs)

    kit.store.add_registration_token = counting  # type: ignore[method-assign]
    allowed = DEDUPE_RATE_FACTOR * 1
    statuses = [kit.register(PUBLIC, source_ip=ip).status for _ in range(allowed + 30)]
    assert statuses == [201] * allowed + [429] * 30
    assert writes == allowed  # a refused registration writes nothing
    refused = kit.register(PUBLIC, source_ip=ip)
    assert refused.headers["retry-after"] == "50" and refused.json["error"] == "temporarily_unavailable"
    # The flood neither spent the budget for new clients nor evicted the earlier registrant's token.
    assert kit.register({**PUBLIC, "client_name": "new"}, source_ip=ip).status == 201
    assert kit.manage("GET", victim["client_id"], victim["registration_access_token"]).status == 200
    assert kit.register(PUBLIC, source_ip=victim_ip).status == 201  # other addresses unaffected
    kit.now += 60
    assert kit.register(PUBLIC, source_ip=ip).status == 201  # the next window


def test_a_flood_of_distinct_registrations_is_limited_before_any_write() -> None:
    kit = Kit(registration_rate_per_minute=3)
    statuses = [kit.register({**PUBLIC, "client_name": f"flood {i}"}).status for i in range(10)]
    assert statuses == [201] * 3 + [429] * 7
    assert len(kit.client_items()) == 3 and kit.store.counted(kit.now) == 3
    statuses = [kit.register(CONFIDENTIAL, source_ip="203.0.113.77").status for i in range(5)]
    assert statuses == [201] * 3 + [429] * 2


# ----- narrow, don't refuse; normalised redirect URIs; display text ----------------------


def test_claude_registers_and_is_told_what_was_registered(kit: Kit) -> None:
    reply = kit.register(CLAUDE_METADATA)
    assert reply.status == 201
    body = reply.json
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["redirect_uris"] == CLAUDE_METADATA["redirect_uris"]
    assert kit.manage("GET", body["client_id"], body["registration_access_token"]).json["grant_types"] == [
        "authorization_code",
        "refresh_token",
    ]


def test_registration_without_authorization_code_is_still_refused(kit: Kit) -> None:
    reply = kit.register({**CLAUDE_METADATA, "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"]})
    assert reply.status == 400 and reply.json["error"] == "invalid_client_metadata"
    assert_nothing_stored(kit)


def test_loopback_with_and_without_trailing_slash_is_one_registration(kit: Kit) -> None:
    vscode = {**PUBLIC, "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"]}
    a = kit.register(vscode).json
    b = kit.register({**vscode, "redirect_uris": ["http://127.0.0.1:33418", "https://vscode.dev/redirect"]}).json
    assert a["client_id"] == b["client_id"]
    assert b["redirect_uris"] == ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"]


def test_cursor_needs_an_operator_pattern() -> None:
    cursor = {**PUBLIC, "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"]}
    assert Kit().register(cursor).json["error"] == "invalid_redirect_uri"
    kit = Kit(redirect_patterns="cursor://anysphere.cursor-mcp/*")
    assert kit.register(cursor).status == 201
    assert kit.register(CLAUDE_METADATA).status == 201  # a custom-scheme pattern narrows nothing else


def test_invisible_characters_never_reach_the_stored_client(kit: Kit) -> None:
    body = kit.register(
        {
            **PUBLIC,
            "client_name": "Good\u202e\u2066Agent\u2028",
            "software_id": "\u200bid",
            "software_version": "1\ufeff",
        }
    ).json
    assert (body["client_name"], body["software_id"], body["software_version"]) == ("GoodAgent", "id", "1")
    stored = kit.store.get(body["client_id"], int(kit.now))
    assert stored is not None and stored.client_name == "GoodAgent"


# ----- unparsable bodies are 400, never 5xx ----------------------------------------------

NESTED = [b"[" * 2000 + b"]" * 2000, b'{"a":' * 2000 + b"1" + b"}" * 2000, b"[" * 16000]


@pytest.mark.parametrize("body", NESTED)
def test_deeply_nested_registration_body_is_400(kit: Kit, body: bytes) -> None:
    reply = kit.register(body)
    assert reply.status == 400
    assert reply.json["error"] == "invalid_client_metadata"
    assert_nothing_stored(kit)


@pytest.mark.parametrize("body", NESTED)
def test_deeply_nested_update_body_is_400(kit: Kit, body: bytes) -> None:
    reg = kit.register(CONFIDENTIAL).json
    before = json.dumps(kit.store.items, sort_keys=True)
    reply = kit.manage("PUT", reg["client_id"], reg["registration_access_token"], body)
    assert reply.status == 400
    assert reply.json["error"] == "invalid_client_metadata"
    assert json.dumps(kit.store.items, sort_keys=True) == before


def test_records_stored_before_stripping_are_cleaned_on_read(kit: Kit) -> None:
    body = kit.register(PUBLIC).json
    item = kit.store.items[CLIENT_PREFIX + body["client_id"]]
    item["metadata"] = json.dumps({**json.loads(item["metadata"]), "client_name": "evil\u202etxt.exe"})
    record = kit.store.get(body["client_id"], int(kit.now))
    assert record is not None and record.client_name == "eviltxt.exe"
