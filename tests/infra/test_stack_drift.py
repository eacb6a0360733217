"""The template against the code's single sources: routes, the local gateway, the scope catalogue, one function each."""

from __future__ import annotations

import pytest

from functions.core.platform.routes import FUNCTIONS, ROUTES
from infra.functions import ALIAS_NAME
from tests.infra.conftest import Synth
from tests.infra.template import (
    function_ids,
    logical_id,
)

pytestmark = pytest.mark.infra


# --- no drift -----------------------------------------------------------------------------


def test_route_keys_equal_routes(synth: Synth) -> None:
    keys = {r["Properties"]["RouteKey"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}
    assert keys == {r.route_key for r in ROUTES}


def test_local_gateway_serves_the_template_routes(synth: Synth) -> None:
    """The local stack's API Gateway stand-in routes every template route to the same function."""
    from local.gateway import LambdaGateway

    gateway = LambdaGateway({name: (lambda event, ctx: {}) for name in FUNCTIONS})
    try:
        for route in synth.resources("AWS::ApiGatewayV2::Route").values():
            method, path = route["Properties"]["RouteKey"].split(" ", 1)
            # Concrete requests for it: a method ANY takes in, path variables filled ("/mcp/"
            # for the greedy one, the trailing-slash spelling of the MCP URL).
            concrete = path.replace("{client_id}", "abc123").replace("{proxy+}", "")
            found = gateway.match("PATCH" if method == "ANY" else method, concrete)
            assert found is not None, f"local gateway does not serve {method} {path}"
            assert found[0].route_key == route["Properties"]["RouteKey"]
    finally:
        gateway.close()


def test_each_route_integrates_its_functions_alias(synth: Synth) -> None:
    fn_ids = function_ids(synth)
    aliases = synth.resources("AWS::Lambda::Alias")
    integrations = synth.template_json["Resources"]
    by_key = {r["Properties"]["RouteKey"]: r for r in synth.resources("AWS::ApiGatewayV2::Route").values()}
    for route in ROUTES:
        target = by_key[route.route_key]["Properties"]["Target"]
        integration_id = target["Fn::Join"][1][1]["Ref"]
        integration = integrations[integration_id]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        alias_id = logical_id(integration["IntegrationUri"])
        alias = aliases[alias_id]["Properties"]
        assert alias["Name"] == ALIAS_NAME
        assert logical_id(alias["FunctionName"]) == fn_ids[route.function], route.route_key


def test_resource_server_scopes_equal_the_apps_catalogue(synth: Synth) -> None:
    _, rs = synth.one("AWS::Cognito::UserPoolResourceServer")
    names = tuple(s["ScopeName"] for s in rs["Properties"]["Scopes"])
    assert names == synth.config.app.scope_names == ("notes:read", "notes:write")
    assert {s["ScopeName"]: s["ScopeDescription"] for s in rs["Properties"]["Scopes"]} == {
        s.name: s.description for s in synth.config.app.scopes
    }


def test_one_lambda_per_function(synth: Synth) -> None:
    assert set(function_ids(synth)) == set(FUNCTIONS)
