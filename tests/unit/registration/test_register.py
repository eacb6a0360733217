"""RFC 7591 registration (POST /register): what is stored, de-duplication, policies, limits,
and bodies that are refused.

The same flows run against DynamoDB (moto) in tests/integration/test_registration.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.store import DEDUPE_PREFIX
from functions.core.platform.crypto import sha256_hex
from functions.registration.service import DEDUPE_RATE_FACTOR
from tests.helpers import BASE_URL, CLAUDE_METADATA
from tests.unit.registration.support import (
    CONFIDENTIAL,
    PUBLIC,
    Kit,
    assert_nothing_stored,
)

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
    assert "dedupe_key" not in item  # as in DynamoDB: no attribute, not a NULL
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
        ({**PUBLIC, "application_type": ["native"]}, "invalid_client_metadata"),
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
    assert Kit(registration_policy="dcr-only").register(PUBLIC).status == 201


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


# Registrations with "scope": "" when no scope was configured or discovered: the MCP
# Inspector (client/src/lib/auth.ts, clientMetadata) and the Gemini CLI
# (packages/core/src/mcp/oauth-provider.ts, registerClient).
MCP_INSPECTOR: dict[str, Any] = {
    "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "client_name": "MCP Inspector",
    "client_uri": "https://github.com/modelcontextprotocol/inspector",
    "scope": "",
}
GEMINI_CLI: dict[str, Any] = {
    "client_name": "Gemini CLI MCP Client",
    "redirect_uris": ["http://localhost:7777/oauth/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
    "scope": "",
}


@pytest.mark.parametrize("metadata", [MCP_INSPECTOR, GEMINI_CLI], ids=["inspector", "gemini-cli"])
def test_inspector_and_gemini_cli_register_with_an_empty_scope(kit: Kit, metadata: dict[str, Any]) -> None:
    reply = kit.register(metadata)
    assert reply.status == 201
    assert "scope" not in reply.json  # RFC 7591 section 3.2.1: the answer shows what was registered
    assert reply.json["redirect_uris"] == metadata["redirect_uris"]


def test_a_development_clients_http_client_uri_is_dropped_and_it_registers(kit: Kit) -> None:
    # A client built on the TypeScript SDK during development: http display URLs for localhost.
    reply = kit.register({**PUBLIC, "client_uri": "http://localhost:3000", "logo_uri": "http://localhost:3000/l.png"})
    assert reply.status == 201
    assert "client_uri" not in reply.json and "logo_uri" not in reply.json  # RFC 7591 section 3.2.1
    shown = kit.manage("GET", reply.json["client_id"], reply.json["registration_access_token"])
    assert shown.status == 200 and "client_uri" not in shown.json


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
