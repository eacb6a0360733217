"""Configuration validation, environment derivation and asset packaging, without synthesis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from functions.core.routes import FUNCTIONS
from functions.core.settings import CoreSettings, Env, McpSettings
from infra import packaging
from infra.config import CDK_JSON, PREFIX, ConfigError, KitConfig, cdk_json_context
from infra.functions import LOCAL_ONLY_ENV, environment_for
from tests.conftest import TEST_APP

pytestmark = pytest.mark.infra


def _ctx(**overrides: Any) -> dict[str, Any]:
    ctx = cdk_json_context()
    ctx.update({PREFIX + "app": str(TEST_APP)})
    ctx.update({PREFIX + k: v for k, v in overrides.items()})
    return ctx


def test_cdk_json_documents_every_kit_key() -> None:
    ctx = cdk_json_context()
    keys = {k for k in ctx if k.startswith(PREFIX)} - {PREFIX + "doc"}
    assert set(ctx[PREFIX + "doc"]) == keys
    assert all(len(text) > 20 for text in ctx[PREFIX + "doc"].values())
    assert json.loads(CDK_JSON.read_text())["app"] == "python app.py"


def test_defaults_parse() -> None:
    cfg = KitConfig.from_mapping(cdk_json_context())
    assert cfg.stack_name == "McpCognitoKit-dev"
    assert cfg.retain_data is True
    assert cfg.custom_domain is None
    assert cfg.threat_protection == "off"
    # Every function of the kit has a throttle of its own in cdk.json.
    assert set(FUNCTIONS) <= set(cfg.route_throttle)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stageName", "Prod!"),
        ("cognitoDomainPrefix", "my-aws-login"),
        ("cognitoDomainPrefix", "UPPER"),
        ("customDomain", {"hostName": "mcp.example.com"}),
        ("customDomain", {"hostName": "https://mcp.example.com", "certificateArn": "arn:aws:acm:x"}),
        ("accessTokenMinutes", 2),
        ("refreshTokenDays", "forever"),
        ("grantCacheSeconds", 301),
        ("mfa", "sometimes"),
        ("threatProtection", "on"),
        ("retainData", "yes"),
        ("logRetentionDays", 31),
        ("allowedOrigins", ["http://evil.example"]),
        ("throttle", {"rateLimit": 0, "burstLimit": 1}),
        ("routeThrottle", {"mcp_server": {"rateLimit": 1}}),
        ("scopeGroupCeilings", {"notes:delete": ["editors"]}),
        ("scopeGroupCeilings", ["editors"]),
        ("app", ""),
        ("app", "no/such/folder"),
        ("app", "tests"),
        ("scopeGroupCeilings", {"notes:write": []}),
    ],
)
def test_bad_context_is_rejected_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"kit:{key}"):
        KitConfig.from_mapping(_ctx(**{key: value}))


def test_missing_key_is_rejected() -> None:
    ctx = cdk_json_context()
    del ctx["kit:grantCacheSeconds"]
    with pytest.raises(ConfigError, match="kit:grantCacheSeconds: missing"):
        KitConfig.from_mapping(ctx)


def test_command_line_integers_are_accepted() -> None:
    assert KitConfig.from_mapping(_ctx(grantCacheSeconds="0")).grant_cache_seconds == 0


def test_environment_is_the_models_fields_only() -> None:
    available = {
        Env.BASE_URL: "https://b",
        Env.USER_POOL_ID: "p",
        Env.GRANTS_TABLE: "g",
        Env.ISSUER: "never-in-aws",
    }
    assert environment_for(CoreSettings, available) == {Env.BASE_URL: "https://b"}
    with pytest.raises(ValueError, match=Env.REGION):
        environment_for(McpSettings, available)
    assert Env.ISSUER in LOCAL_ONLY_ENV


def test_environment_follows_plain_aliases_too() -> None:
    class Legacy(BaseModel):
        x: str = Field(alias="X_VAR")

    assert environment_for(Legacy, {"X_VAR": "1"}) == {"X_VAR": "1"}  # type: ignore[arg-type]


def test_requirements_files_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "requirements.txt").write_text("# comment\nmcp>=2.3,<3  # pinned\n\npydantic\n")
    monkeypatch.setattr(packaging, "FUNCTIONS_DIR", tmp_path)
    assert packaging.requirements_for("fn") == ("mcp>=2.3,<3", "pydantic")
    assert packaging.requirements_for("missing") == packaging.CORE_REQUIREMENTS
    (tmp_path / "fn" / "requirements.txt").write_text("-r other.txt\n")
    with pytest.raises(packaging.BundlingError, match="pip options"):
        packaging.requirements_for("fn")


def test_real_requirements_never_bundle_boto3() -> None:
    for name in FUNCTIONS:
        reqs = packaging.requirements_for(name)
        assert not [r for r in reqs if r.lower().startswith(packaging.RUNTIME_PROVIDED)], name


def test_cache_key_is_order_insensitive_and_platform_bound() -> None:
    a = packaging.deps_cache_key(("b", "a"))
    assert a == packaging.deps_cache_key(("a", "b"))
    assert a != packaging.deps_cache_key(("a",))


def test_strip_tree(tmp_path: Path) -> None:
    files = [
        "pkg/__init__.py",
        "pkg/__pycache__/x.cpython-311.pyc",
        "pkg/tests/test_x.py",
        "pkg/mod.pyi",
        "pkg/data.json",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/licenses/LICENSE",
        "boto3/__init__.py",
        "botocore-1.0.dist-info/METADATA",
        "bin/some-script",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    packaging.strip_tree(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/licenses/LICENSE",
        "pkg/__init__.py",
        "pkg/data.json",
    ]


def test_cached_install_is_reused_and_stale_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_pip(requirements: tuple[str, ...], target: Path) -> None:
        calls.append(requirements)
        (target / "dep").mkdir()
        (target / "dep" / "__init__.py").write_text("")

    monkeypatch.setattr(packaging, "_pip_install", fake_pip)
    first, state = packaging.platform_deps("fn", ("dep==1",), tmp_path)
    assert state == "miss"
    again, state = packaging.platform_deps("fn", ("dep==1",), tmp_path)
    assert (again, state) == (first, "hit")
    assert calls == [("dep==1",)]

    def broken_pip(requirements: tuple[str, ...], target: Path) -> None:
        raise packaging.BundlingError("offline")

    monkeypatch.setattr(packaging, "_pip_install", broken_pip)
    stale, state = packaging.platform_deps("fn", ("dep==2",), tmp_path)
    assert (stale, state) == (first, "stale")
    with pytest.raises(packaging.BundlingError, match="no earlier install"):
        packaging.platform_deps("other", ("dep==2",), tmp_path)


def test_ceilings_default_to_the_apps_and_can_be_replaced() -> None:
    assert KitConfig.from_mapping(_ctx(scopeGroupCeilings=None)).scope_group_ceilings == {"notes:write": ("editors",)}
    replaced = KitConfig.from_mapping(_ctx(scopeGroupCeilings={"notes:read": ["staff"]}))
    assert replaced.scope_group_ceilings == {"notes:read": ("staff",)}
    assert replaced.groups == ("staff",)


def test_app_requirements_go_to_the_mcp_function_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "requirements.txt").write_text("mcp>=2.3,<3\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("# the app's own\nhumanize>=4\nmcp>=2.3,<3\n")
    monkeypatch.setattr(packaging, "FUNCTIONS_DIR", tmp_path)
    assert packaging.requirements_for("fn", app) == ("mcp>=2.3,<3", "humanize>=4")
    assert packaging.requirements_for("fn") == ("mcp>=2.3,<3",)


def _fake_app(root: Path) -> Path:
    for f in ("app.json", "server.py", "store/__init__.py", "requirements.txt", "tests/test_x.py", ".venv/x"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    return root


def test_bundler_copies_only_its_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "functions"
    app = _fake_app(tmp_path / "team-app")
    for f in ("__init__.py", "core/__init__.py", "a/handler.py", "a/requirements.txt", "b/handler.py"):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_text("x")
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "lib.py").write_text("x")
    (deps / ".complete").write_text("{}")
    monkeypatch.setattr(packaging, "FUNCTIONS_DIR", src)
    monkeypatch.setattr(packaging, "platform_deps", lambda fn, reqs, cache: (deps, "hit"))
    monkeypatch.setattr(packaging, "BUNDLE_REPORT", [])
    out = tmp_path / "out"
    out.mkdir()
    assert packaging.LocalPythonBundler("a", app, cache_dir=tmp_path, max_bytes=10_000).try_bundle(str(out), object())
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    # Without the app's tools: only its catalogue, as kit_app/app.json.
    assert left == [
        "functions/__init__.py",
        "functions/a/handler.py",
        "functions/core/__init__.py",
        "kit_app/app.json",
        "lib.py",
    ]
    with_tools = tmp_path / "out-tools"
    with_tools.mkdir()
    bundler = packaging.LocalPythonBundler("a", app, with_tools=True, cache_dir=tmp_path, max_bytes=10_000)
    assert bundler.try_bundle(str(with_tools), object())
    shipped = sorted(str(p.relative_to(with_tools / "kit_app")) for p in (with_tools / "kit_app").rglob("*"))
    assert shipped == ["app.json", "server.py", "store", "store/__init__.py"]  # no tests, requirements, dot-dirs
    too_small = packaging.LocalPythonBundler("a", app, cache_dir=tmp_path, max_bytes=1)
    with pytest.raises(packaging.BundlingError, match="budget"):
        too_small.try_bundle(str(tmp_path / "out2"))
