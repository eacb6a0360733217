"""Reading the synthesized template: logical ids of functions, roles and tables, and IAM statements."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from functions.core.platform.routes import FUNCTIONS
from functions.core.platform.topology import TABLES, app_table_specs
from tests.infra.conftest import Synth

API_ENDPOINT = {"Fn::GetAtt": [Match.string_like_regexp("^ApiHttpApi"), "ApiEndpoint"]}


def join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def logical_id(value: Any) -> str:
    """The logical id behind a Ref or GetAtt."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a Ref/GetAtt: {value!r}")


def function_ids(s: Synth) -> dict[str, str]:
    """Function name (functions/core/platform/routes.py) -> logical id of its Lambda function."""
    ids: dict[str, str] = {}
    for lid, res in s.resources("AWS::Lambda::Function").items():
        handler = res["Properties"]["Handler"]
        (name,) = [n for n, spec in FUNCTIONS.items() if spec.handler == handler]
        ids[name] = lid
    return ids


def role_of(s: Synth, function: str) -> str:
    fn = s.template_json["Resources"][function_ids(s)[function]]
    return logical_id(fn["Properties"]["Role"])


def statements_of_role(s: Synth, role_id: str) -> list[dict[str, Any]]:
    out = []
    for pol in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in pol["Properties"]["Roles"]:
            out.extend(pol["Properties"]["PolicyDocument"]["Statement"])
    role = s.template_json["Resources"][role_id]
    for inline in role["Properties"].get("Policies", []):
        out.extend(inline["PolicyDocument"]["Statement"])
    assert not role["Properties"].get("ManagedPolicyArns"), "functions use explicit roles, no managed policies"
    return out


def actions(stmt: dict[str, Any]) -> set[str]:
    a = stmt["Action"]
    return {a} if isinstance(a, str) else set(a)


def table_ids(s: Synth) -> dict[str, str]:
    """Table key (topology.TABLES) -> logical id, via the env vars the functions receive."""
    env: dict[str, Any] = {}
    for fn_id in function_ids(s).values():
        env.update(s.template_json["Resources"][fn_id]["Properties"]["Environment"]["Variables"])
    ids = {spec.key: logical_id(env[spec.env]) for spec in TABLES if spec.env in env}
    # The app's tables reach the MCP function together, as the JSON of APP_TABLES.
    app_tables = json.dumps(env["APP_TABLES"])
    for spec in app_table_specs(s.config.app):
        table = s.stack.data.tables[spec.key]
        ids[spec.key] = s.stack.get_logical_id(table.node.default_child)
        assert json.dumps({"Ref": ids[spec.key]}) in app_tables, spec.key
    return ids


def all_tables(s: Synth) -> tuple[Any, ...]:
    return (*TABLES, *app_table_specs(s.config.app))
