"""RFC 7592 client configuration (GET/PUT/DELETE /register/{client_id}), including the
read-only shared public registrations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.store import MAX_REGISTRATION_TOKENS
from functions.core.platform.crypto import sha256_hex
from tests.helpers import FakeContext
from tests.unit.registration.support import (
    CONFIDENTIAL,
    PUBLIC,
    Kit,
    Reply,
    assert_nothing_stored,
    event,
)

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
    for token in ("wrong-token", other["registration_access_token"]):
        reply = kit.manage(method, cid, token, body if method == "PUT" else None)
        assert reply.status == 401
        assert reply.json["error"] == "invalid_token"
        assert reply.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # RFC 6750 section 3.1: a request without a bearer token gets a challenge without an error
    # code (absent header, or another scheme such as Basic); a malformed bearer token is invalid.
    for headers in ({}, {"authorization": "Basic " + reg["registration_access_token"]}):
        bare = kit.call(method, f"/register/{cid}", headers=headers)
        assert bare.status == 401 and bare.json["error"] == "invalid_token"
        assert bare.headers["www-authenticate"] == "Bearer"
    malformed = kit.call(method, f"/register/{cid}", headers={"authorization": "Bearer a b"})
    assert malformed.headers["www-authenticate"] == 'Bearer error="invalid_token"'
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


def test_null_server_issued_fields_count_as_omitted_on_update(kit: Kit) -> None:
    # RFC 7592 section 2.2: omitted fields are treated as null; a null member is not a value,
    # so it is neither a forbidden field nor a secret that fails to match.
    reg = kit.register(CONFIDENTIAL).json
    nulls = {"client_secret": None, "client_secret_expires_at": None, "registration_access_token": None}
    body = {**CONFIDENTIAL, "client_id": reg["client_id"], "client_name": "B", **nulls}
    reply = kit.manage("PUT", reg["client_id"], reg["registration_access_token"], body)
    assert reply.status == 200
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
