"""The grants table's by-user and by-client indexes (moto, created by local.seed as in CDK)."""

from __future__ import annotations

import uuid

import pytest

from functions.core.platform import aws
from functions.core.platform.topology import GRANTS_BY_CLIENT, GRANTS_BY_USER
from functions.core.state.consent import Consent, DynamoConsentRepository
from functions.core.state.grant_index import DynamoGrantIndex, IndexNotDeployed
from functions.core.state.grants import GRANTS, DynamoGrantRepository
from functions.core.state.reconciliation import GrantScopes
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository, RefreshToken
from local.config import GRANTS_TABLE
from tests.helpers import grant
from tests.integration.conftest import MotoStack


def _ids(n: int = 1) -> list[str]:
    return [uuid.uuid4().hex[:10] for _ in range(n)]


def test_grants_of_a_user_and_of_a_client_are_found_by_key(moto_stack: MotoStack) -> None:
    sub, other, client = f"sub-{_ids()[0]}", f"sub-{_ids()[0]}", f"agent-{_ids()[0]}"
    repo = DynamoGrantRepository(GRANTS_TABLE)
    a, b, c = (f"origin-{i}" for i in _ids(3))
    repo.create(grant(a, sub, ("notes:read",), client_id=client, username="alice", email="a@example.com"))
    repo.create(grant(b, sub, ("notes:write",), client_id="agent-other"))
    repo.create(grant(c, other, ("notes:read",), client_id=client))
    index = DynamoGrantIndex(GRANTS_TABLE)

    mine = {g.grant_id: g for g in index.grants_of_user(sub)}
    assert set(mine) == {a, b}
    assert mine[a].client_id == client and mine[a].scopes == frozenset({"notes:read"})
    assert mine[a].username == "alice" and mine[a].email == "a@example.com" and mine[a].status == "active"
    assert {g.grant_id for g in index.grants_of_client(client)} == {a, c}


def test_the_indexes_never_hold_cognitos_refresh_token(moto_stack: MotoStack) -> None:
    sub, client = f"sub-{_ids()[0]}", f"agent-{_ids()[0]}"
    grant_id = f"origin-{_ids()[0]}"
    DynamoGrantRepository(GRANTS_TABLE).create(
        grant(grant_id, sub, client_id=client, upstream_refresh=b"kms-ciphertext", refresh_head="ab" * 32)
    )
    for index in (GRANTS_BY_USER, GRANTS_BY_CLIENT):
        assert "upstream_refresh" not in index.non_key_attributes and "refresh_head" not in index.non_key_attributes
    listed = DynamoGrantIndex(GRANTS_TABLE).grants_of_user(sub)
    assert [(g.grant_id, g.upstream_refresh, g.refresh_head) for g in listed] == [(grant_id, None, None)]


def test_refresh_tokens_are_not_listed_as_grants_of_their_client(moto_stack: MotoStack) -> None:
    client, grant_id = f"agent-{_ids()[0]}", f"origin-{_ids()[0]}"
    DynamoGrantRepository(GRANTS_TABLE).create(grant(grant_id, f"sub-{_ids()[0]}", client_id=client))
    token = RefreshToken(
        token_hash="cd" * 32,
        grant_id=grant_id,
        client_id=client,
        status="active",
        created_at=0,
        expires_at=2**31,
        scopes=frozenset({"notes:read"}),
    )
    DynamoRefreshTokenRepository(GRANTS_TABLE).create(token)
    assert [g.grant_id for g in DynamoGrantIndex(GRANTS_TABLE).grants_of_client(client)] == [grant_id]


def test_remembered_consents_of_a_user_and_of_a_client(moto_stack: MotoStack) -> None:
    sub, client = f"sub-{_ids()[0]}", f"https://agent-{_ids()[0]}.example/client.json"
    consent = Consent(sub, client, frozenset({"notes:read"}), 10, 20, 2**31, ("https://agent.example/cb",))
    DynamoConsentRepository(GRANTS_TABLE).put(consent)
    index = DynamoGrantIndex(GRANTS_TABLE)
    assert index.consents_of_user(sub) == [consent]
    assert index.consents_of_client(client) == [consent]
    assert index.grants_of_user(sub) == []


def test_listings_carry_the_agents_name_and_version_2_grants_list_without_it(moto_stack: MotoStack) -> None:
    sub, client = f"sub-{_ids()[0]}", f"agent-{_ids()[0]}"
    named, old = (f"origin-{i}" for i in _ids(2))
    DynamoGrantRepository(GRANTS_TABLE).create(grant(named, sub, client_id=client, client_name="Claude Desktop"))
    # Written as storage schema version 2 did: no client_name attribute.
    aws.dynamodb().put_item(TableName=GRANTS_TABLE, Item=GRANTS.to_item(grant(old, sub, client_id=client)))
    index = DynamoGrantIndex(GRANTS_TABLE)
    for listed in (index.grants_of_user(sub), index.grants_of_client(client)):
        assert {g.grant_id: g.client_name for g in listed} == {named: "Claude Desktop", old: ""}


class NoCalls:
    """A DynamoDB client that fails the test on any call."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"DynamoDB {name} called")


@pytest.mark.parametrize("deployed", [(), ("by_user",), ("by_client",)])
def test_a_read_of_an_index_the_deployment_lacks_refuses_before_calling_dynamodb(deployed: tuple[str, ...]) -> None:
    index = DynamoGrantIndex(GRANTS_TABLE, deployed, client=NoCalls())
    reads = {
        "by_user": (index.grants_of_user, index.consents_of_user),
        "by_client": (index.grants_of_client, index.consents_of_client),
    }
    for name, calls in reads.items():
        if name in deployed:
            continue
        for read in calls:
            with pytest.raises(IndexNotDeployed, match=name) as raised:
                read("someone")
            assert raised.value.index == name and "kit:grantIndexes" in str(raised.value)
    if "by_user" not in deployed:
        with pytest.raises(IndexNotDeployed):
            list(GrantScopes(GRANTS_TABLE, deployed, client=NoCalls()).holders())
