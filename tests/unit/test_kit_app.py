"""The app contract: manifest validation, where the app is found, tools checked against the catalogue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.core.platform import kit_app
from functions.core.platform.kit_app import APP_PATH_ENV, AppError, app_dir, load_manifest
from functions.core.platform.settings import Env, McpSettings, SettingsError
from functions.mcp_server.api import AppContext, ToolRegistry
from functions.mcp_server.app_loader import build_registry, import_server
from functions.mcp_server.factory import create_endpoint
from functions.mcp_server.registry import UnknownScopeError
from tests.conftest import TEST_APP
from tests.helpers import mcp_settings

SCOPE = {"name": "x:read", "description": "Read x"}


def _manifest(tmp_path: Path, **data: Any) -> Path:
    (tmp_path / "app.json").write_text(json.dumps({"scopes": [SCOPE], **data}))
    return tmp_path


def test_the_test_app_is_the_catalogue_of_the_kit_tests() -> None:
    manifest = kit_app.current()
    assert manifest.root == TEST_APP
    assert manifest.scope_names == ("notes:read", "notes:write")
    assert manifest.default_ceilings == {"notes:write": ("editors",)}


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"scopes": []}, "'scopes' must be a list"),
        ({"scopes": [{"name": "a b", "description": "d"}]}, r"scopes\[0\].name"),
        ({"scopes": [{"name": "mcp/read", "description": "d"}]}, r"scopes\[0\].name"),
        ({"scopes": [{"name": "offline_access", "description": "d"}]}, r"scopes\[0\].name"),
        ({"scopes": [SCOPE, SCOPE]}, r"scopes\[1\].name: duplicate"),
        ({"scopes": [{"name": "x", "description": ""}]}, r"scopes\[0\].description"),
        ({"scopes": [{"name": "x", "description": "d", "default": "yes"}]}, r"scopes\[0\].default"),
        ({"scopes": [{"name": "x", "description": "d", "groups": "editors"}]}, r"scopes\[0\].groups"),
        ({"scopes": [{"name": "x", "description": "d", "default": False}]}, "at least one scope must be a default"),
        ({"scopes": [{"name": "x", "description": "d", "tools": []}]}, r"scopes\[0\]: an object"),
        ({"scopes": [SCOPE], "tables": [{"name": "grants"}]}, r"tables\[0\].name"),
        ({"scopes": [SCOPE], "tables": [{"name": "Notes"}]}, r"tables\[0\].name"),
        ({"scopes": [SCOPE], "tables": [{"name": "n", "sortKey": 3}]}, r"tables\[0\].sortKey"),
        ({"scopes": [SCOPE], "tables": [{"name": "n", "actions": ["dynamodb:*"]}]}, r"tables\[0\].actions"),
        ({"scopes": [SCOPE], "extra": 1}, "an object with 'scopes'"),
    ],
)
def test_malformed_manifest_is_refused_naming_file_and_field(tmp_path: Path, data: Any, where: str) -> None:
    (tmp_path / "app.json").write_text(json.dumps(data))
    with pytest.raises(AppError, match=where) as info:
        load_manifest(tmp_path)
    assert str(tmp_path / "app.json") in str(info.value)


def test_missing_or_unparsable_manifest(tmp_path: Path) -> None:
    with pytest.raises(AppError, match="missing"):
        load_manifest(tmp_path)
    (tmp_path / "app.json").write_text("{nope")
    with pytest.raises(AppError, match="not readable JSON"):
        load_manifest(tmp_path)


def test_app_found_from_the_environment_else_packaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert app_dir({kit_app.APP_PATH_ENV: str(tmp_path)}) == tmp_path.resolve()
    monkeypatch.setattr(kit_app, "PACKAGED_DIR", tmp_path / "kit_app")
    with pytest.raises(AppError, match=kit_app.APP_PATH_ENV):
        app_dir({})
    (tmp_path / "kit_app").mkdir()
    _manifest(tmp_path / "kit_app")
    assert app_dir({}) == tmp_path / "kit_app"


def test_tool_naming_a_scope_missing_from_the_catalogue_names_both() -> None:
    tools = ToolRegistry(("notes:read",), source="app.json")
    with pytest.raises(
        UnknownScopeError, match=r"tool 'purge' requires scope\(s\) \['notes:purge'\] missing from app.json"
    ):

        @tools.tool(scopes=("notes:purge",))
        async def purge() -> None: ...

    with pytest.raises(TypeError):
        tools.tool(scopes="notes:read")  # type: ignore[arg-type]


def test_cold_start_fails_on_a_tool_with_an_unknown_scope() -> None:
    def register(tools: ToolRegistry, _ctx: AppContext) -> None:
        @tools.tool(scopes=("notes:delete",))
        async def delete_note() -> None: ...

    with pytest.raises(UnknownScopeError, match=r"'delete_note'.*'notes:delete'.*app\.json"):
        create_endpoint(mcp_settings(), register=register)


def test_registry_is_filled_by_the_apps_register() -> None:
    tools = build_registry(kit_app.current(), AppContext(tables={"notes": "t"}))
    assert [t.name for t in tools] == ["whoami", "list_notes", "add_note", "archive_note"]
    assert tools.required_scopes("archive_note") == {"notes:write"}


def test_app_table_names_must_cover_the_manifest() -> None:
    with pytest.raises(SettingsError, match=rf"{Env.APP_TABLES}.*\['notes'\]"):
        McpSettings.from_env(
            {
                Env.BASE_URL: "https://mcp.example.com",
                Env.USER_POOL_ID: "us-east-1_Abc123",
                Env.REGION: "us-east-1",
                Env.GATEWAY_CLIENT_ID: "client",
                Env.GRANTS_TABLE: "grants",
                Env.CLIENTS_TABLE: "clients",
                Env.APP_TABLES: '{"other": "x-table"}',
            }
        )


def test_a_second_app_in_one_process_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AppError, match="already imported"):
        import_server(tmp_path)  # the test app holds kit_app in this process


def test_ctx_table_names_only_declared_tables() -> None:
    with pytest.raises(KeyError, match=r"not declared in the app's app\.json"):
        AppContext(tables={"notes": "t"}).table("todos")


def test_facade_functions_read_the_catalogue_without_the_sdk_or_the_apps_code() -> None:
    """The metadata, registration, authorization and token code never imports `mcp` or `kit_app`."""
    code = (
        "import sys\n"
        "import functions.metadata.handler, functions.registration.handler\n"
        "import functions.authorization.api, functions.authorization.flow, functions.token.api\n"
        "from functions.core.oauth import scopes\n"
        "from functions.metadata.documents import protected_resource_metadata\n"
        "from functions.core.platform.settings import CoreSettings\n"
        "doc = protected_resource_metadata(CoreSettings(base_url='https://b.example'))\n"
        "assert doc['scopes_supported'] == ['notes:read', 'notes:write'], doc\n"
        "assert scopes.get_scope('notes:write').description == 'Write and archive your notes'\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'kit_app'))\n"
        "assert not leaked, leaked\n"
    )
    env = {
        **os.environ,
        APP_PATH_ENV: str(TEST_APP),
        Env.BASE_URL: "https://b.example",
        Env.CLIENTS_TABLE: "clients",
        Env.ARTEFACTS_TABLE: "artefacts",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
