"""The grants table's global secondary indexes in the synthesized template (one spec with local)."""

from __future__ import annotations

from functions.core.platform.topology import GRANTS_BY_CLIENT, GRANTS_BY_USER
from tests.infra.conftest import Synth


def test_grants_table_has_the_by_user_and_by_client_indexes_without_secrets(synth: Synth) -> None:
    tables = synth.resources("AWS::DynamoDB::Table")
    with_indexes = [t["Properties"] for t in tables.values() if t["Properties"].get("GlobalSecondaryIndexes")]
    assert len(with_indexes) == 1, "only the grants table is indexed"
    indexes = {i["IndexName"]: i for i in with_indexes[0]["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_user", "by_client"}
    for spec in (GRANTS_BY_USER, GRANTS_BY_CLIENT):
        index = indexes[spec.name]
        assert index["KeySchema"] == [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ]
        # Never ALL: the grant item's KMS ciphertext and chain head stay out of the index.
        assert index["Projection"]["ProjectionType"] == "INCLUDE"
        assert not {"upstream_refresh", "refresh_head"} & set(index["Projection"]["NonKeyAttributes"])
        # A listing names the agent as the grant recorded it.
        assert "client_name" in index["Projection"]["NonKeyAttributes"]
    defined = {a["AttributeName"]: a["AttributeType"] for a in with_indexes[0]["AttributeDefinitions"]}
    assert defined == {"pk": "S", "sub": "S", "kind": "S", "client_id": "S"}
