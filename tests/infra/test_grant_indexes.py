"""kit:grantIndexes: the template creates exactly the named grants-table indexes, and IAM follows.

CloudFormation (DynamoDB UpdateTable) creates or deletes at most one global secondary index per
update of a table, so a stack deployed without the indexes upgrades in two deploys (README,
"Upgrade the kit"). Each partial setting synthesizes once here (the default one is ``synth``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from functions.core.platform.settings import Env
from functions.core.platform.topology import GRANT_INDEX_NAMES, GRANT_INDEXES
from tests.infra.conftest import Synth, _synth
from tests.infra.template import actions, function_ids, role_of, statements_of_role, table_ids

pytestmark = pytest.mark.infra

# What each function queries or scans, by index, when the stack has that index.
QUERIES: dict[str, dict[str, set[str]]] = {
    "authorization": {"by_user": {"dynamodb:Query"}},
    "deprovisioning": {"by_user": {"dynamodb:Query", "dynamodb:Scan"}},
}
# The functions whose settings read GRANT_INDEXES (ManagementSettings and FacadeSettings).
READERS = ("authorization", "token", "deprovisioning")


@pytest.fixture(scope="module", params=[("by_user",), ("by_client",), ()], ids=lambda p: "+".join(p) or "none")
def partial(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir: Path = tmp_path_factory.mktemp("cdk-indexes")
    return _synth(outdir, {"kit:grantIndexes": list(request.param)})


def _grants_table(s: Synth) -> dict[str, Any]:
    props: dict[str, Any] = s.template_json["Resources"][table_ids(s)["grants"]]["Properties"]
    return props


def _index_resources(statement: dict[str, Any]) -> list[str]:
    """The index names a statement's resources end in (``<table arn>/index/<name>``)."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    names = []
    for resource in resources:
        text = json.dumps(resource)
        if "/index/" in text:
            names.append(text.split("/index/")[1].split('"')[0])
    return names


def _index_access(s: Synth, function: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in statements_of_role(s, role_of(s, function)):
        for name in _index_resources(statement):
            found.setdefault(name, set()).update(actions(statement))
    return found


def _check(s: Synth, expected: tuple[str, ...]) -> None:
    table = _grants_table(s)
    created = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
    assert created == list(expected), "exactly the named indexes, in topology order"
    keys = {k for spec in GRANT_INDEXES if spec.name in expected for k in (spec.partition_key, spec.sort_key)}
    assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == {"pk", *keys}
    for function in function_ids(s):
        wanted = {name: acts for name, acts in QUERIES.get(function, {}).items() if name in expected}
        # No permission on an index the stack did not create; the full set on one it did.
        assert _index_access(s, function) == wanted, function
    env = {
        f: s.template_json["Resources"][lid]["Properties"]["Environment"]["Variables"]
        for f, lid in function_ids(s).items()
    }
    for function in READERS:
        assert env[function][Env.GRANT_INDEXES] == ",".join(expected), function
    assert Env.GRANT_INDEXES not in env["mcp_server"] and Env.GRANT_INDEXES not in env["metadata"]
    assert json.loads(s.template_json["Outputs"]["GrantIndexes"]["Value"]) == list(expected)


def test_the_default_creates_every_index_and_grants_query_on_each_as_before(synth: Synth) -> None:
    _check(synth, GRANT_INDEX_NAMES)


def test_a_partial_setting_creates_only_the_named_indexes_and_no_access_to_the_others(partial: Synth) -> None:
    _check(partial, partial.config.grant_indexes)


def test_synth_warns_when_deprovisioning_has_no_by_user_index(synth: Synth, partial: Synth) -> None:
    def warned(s: Synth) -> bool:
        found = Annotations.from_stack(s.stack).find_warning("*", Match.string_like_regexp("lacks by_user"))
        return bool(found)

    assert not warned(synth)
    assert warned(partial) == ("by_user" not in partial.config.grant_indexes)
