"""Configuration validation and asset packaging, without synthesis."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from functions.core.platform.routes import FUNCTIONS, ROUTES
from infra import aws_models, bytecode, packaging, runtime_probe
from infra.config import CDK_JSON, PREFIX, ConfigError, KitConfig, cdk_json_context
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
    assert {name for name in FUNCTIONS if name in {r.function for r in ROUTES}} <= set(cfg.route_throttle)


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

    def fake_pip(requirements: tuple[str, ...], target: Path, platform: str) -> None:
        calls.append(requirements)
        (target / "dep").mkdir()
        (target / "dep" / "__init__.py").write_text("")

    monkeypatch.setattr(packaging, "_pip_install", fake_pip)
    first, state = packaging.platform_deps("fn", ("dep==1",), tmp_path)
    assert state == "miss"
    again, state = packaging.platform_deps("fn", ("dep==1",), tmp_path)
    assert (again, state) == (first, "hit")
    assert calls == [("dep==1",)]

    def broken_pip(requirements: tuple[str, ...], target: Path, platform: str) -> None:
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
    monkeypatch.setattr(packaging, "platform_deps", lambda fn, reqs, cache, platform, bytecode: (deps, "hit"))
    monkeypatch.setattr(packaging, "BUNDLE_REPORT", [])
    out = tmp_path / "out"
    out.mkdir()
    # ~0.45 MB of it is the pruned botocore data (tests/infra/test_aws_models.py)
    assert packaging.LocalPythonBundler("a", app, cache_dir=tmp_path, max_bytes=1_000_000).try_bundle(
        str(out), object()
    )
    assert (out / aws_models.ASSET_DATA_DIR / "dynamodb").is_dir()
    left = sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file() and p.suffix != ".pyc" and out / aws_models.ASSET_DATA_DIR not in p.parents
    )
    # Not the app's function: only its catalogue, as kit_app/app.json.
    assert left == [
        "functions/__init__.py",
        "functions/a/handler.py",
        "functions/core/__init__.py",
        "kit_app/app.json",
        "lib.py",
    ]
    monkeypatch.setattr(packaging, "APP_FUNCTION", "a")
    with_tools = tmp_path / "out-tools"
    with_tools.mkdir()
    assert packaging.LocalPythonBundler("a", app, cache_dir=tmp_path, max_bytes=1_000_000).try_bundle(str(with_tools))
    shipped = sorted(
        str(p.relative_to(with_tools / "kit_app")) for p in (with_tools / "kit_app").rglob("*") if p.suffix != ".pyc"
    )
    # no tests, requirements or dot-folders; compiled like the kit's own code
    assert shipped == ["__pycache__", "app.json", "server.py", "store", "store/__init__.py", "store/__pycache__"]
    too_small = packaging.LocalPythonBundler("a", app, cache_dir=tmp_path, max_bytes=1)
    with pytest.raises(packaging.BundlingError, match="budget"):
        too_small.try_bundle(str(tmp_path / "out2"))


def test_prune_tree(tmp_path: Path) -> None:
    files = [
        "click/__init__.py",
        "click-8.0.dist-info/METADATA",
        "_cffi_backend.cpython-313-aarch64-linux-gnu.so",
        "cffi/__init__.py",
        "pydantic/v1/__init__.py",
        "pydantic/main.py",
        "anyio/_backends/_trio.py",
        "anyio/_backends/_asyncio.py",
        "clickhouse/__init__.py",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    packaging.prune_tree(tmp_path, ("click", "_cffi_backend", "pydantic/v1", "anyio/_backends/_trio.py"))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["anyio/_backends/_asyncio.py", "cffi/__init__.py", "clickhouse/__init__.py", "pydantic/main.py"]


def test_every_function_prunes_what_it_cannot_import() -> None:
    assert "cryptography" in packaging.pruned_for("token")
    assert "cryptography" not in packaging.pruned_for("mcp_server")  # its per-request check needs it
    assert "aws_lambda_powertools/event_handler" not in packaging.pruned_for("metadata")  # its router


# --------------------------------------------------------------------------- bytecode


def _magic_of_runtime() -> bytes:
    probe = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run([bytecode.bytecode_python(), "-c", probe], capture_output=True, text=True, check=True)
    return bytes.fromhex(out.stdout)


def test_bytecode_python_is_the_runtime_version() -> None:
    out = subprocess.run(
        [bytecode.bytecode_python(), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert tuple(int(v) for v in out.stdout.split()) == bytecode.LAMBDA_PYTHON == (3, 13)


def test_compile_tree_layouts(tmp_path: Path) -> None:
    deps, code = tmp_path / "deps" / "pkg", tmp_path / "asset" / "functions"
    for d in (deps, code):
        d.mkdir(parents=True)
        (d / "__init__.py").write_text("")
        (d / "mod.py").write_text("VALUE = 42\n")
    (deps / "py2_only.py").write_text("print 'never imported'\n")
    bytecode.compile_tree(deps, sourceless=True)
    bytecode.compile_tree(code, sourceless=False)
    magic = _magic_of_runtime()
    # Dependencies: sourceless X.pyc in place of X.py; a file that does not compile keeps its source.
    assert sorted(p.name for p in deps.iterdir()) == ["__init__.pyc", "mod.pyc", "py2_only.py"]
    # The kit's code: sources kept, bytecode in __pycache__ with the runtime's tag.
    assert sorted(p.name for p in (code / "__pycache__").iterdir()) == [
        "__init__.cpython-313.pyc",
        "mod.cpython-313.pyc",
    ]
    for pyc in [deps / "mod.pyc", code / "__pycache__" / "mod.cpython-313.pyc"]:
        header = pyc.read_bytes()[:8]
        assert header[:4] == magic
        # PEP 552 flags: bit 0 hash-based, bit 1 check_source. Unchecked hash: valid whatever the mtimes.
        assert int.from_bytes(header[4:8], "little") == 0b01


def test_shipped_bytecode_is_loaded_without_checking_sources(tmp_path: Path) -> None:
    code = tmp_path / "functions"
    code.mkdir()
    (code / "__init__.py").write_text("")
    (code / "mod.py").write_text("VALUE = 42\n")
    bytecode.compile_tree(code, sourceless=False)
    # New times and even new content (what a copy or unzip could do to times): an unchecked-hash
    # pyc is still what runs, from a read-only directory, with no bytecode written.
    (code / "mod.py").write_text("VALUE = 43\n")
    os.utime(code / "mod.py", (1, 1))
    (code / "__pycache__").chmod(0o555)
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import functions.mod as m; print(m.VALUE)"
    try:
        out = subprocess.run(
            [bytecode.bytecode_python(), "-I", "-B", "-c", probe, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        (code / "__pycache__").chmod(0o755)
    assert out.stdout.strip() == "42"


# --------------------------------------------------------------------------- ELF symbol tables


def test_strip_symbols_keeps_what_the_loader_maps(tmp_path: Path) -> None:
    import cryptography.hazmat.bindings._rust as rust

    from infra.elf import strip_symbols

    original = Path(rust.__file__)
    copy = tmp_path / original.name
    shutil.copy2(original, copy)
    saved = strip_symbols(copy)
    assert saved > 1_000_000  # cryptography's static symbol table
    assert strip_symbols(copy) == 0  # nothing left to strip
    headers = subprocess.run(["readelf", "-lW", str(original)], capture_output=True, text=True, check=False)
    if headers.returncode == 0:
        stripped = subprocess.run(["readelf", "-lW", str(copy)], capture_output=True, text=True, check=True)
        assert stripped.stdout == headers.stdout  # identical program headers and segment mapping
    ctypes.CDLL(str(copy))  # the dynamic loader accepts it
    not_elf = tmp_path / "lib.so"
    not_elf.write_bytes(b"not an ELF file")
    assert strip_symbols(not_elf) == 0 and not_elf.read_bytes() == b"not an ELF file"


# --------------------------------------------------------------------------- built assets


# Built for this machine's platform (the Lambda's aarch64 extensions cannot load here), with
# the same pruning, bytecode and layout as the deployed asset.
PROBE_PLATFORM = f"manylinux2014_{platform.machine()}"


@pytest.fixture(scope="session")
def probe_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("probe-assets")
    out = {}
    for name in FUNCTIONS:
        out[name] = root / name
        out[name].mkdir()
        packaging.build_asset(name, out[name], platform=PROBE_PLATFORM)
    return out


VERIFY_CHILD = (
    runtime_probe.PRELUDE
    + """
import functions.core.cognito.jwks as v
kid, key = v.build_key(json.loads(sys.argv[2]))
msg, sig = sys.argv[3].encode(), bytes.fromhex(sys.argv[4])
ok, forged = v.verify_rs256(key, msg, sig), v.verify_rs256(key, msg + b"x", sig)
print(json.dumps({"ok": ok, "forged": forged, "backend": type(key).__name__}))
"""
)


def test_every_handler_imports_from_its_asset_alone(probe_assets: dict[str, Path]) -> None:
    runtime = runtime_probe.runtime_dir()
    for name, spec in FUNCTIONS.items():
        result = runtime_probe.import_handler(probe_assets[name], runtime, spec.handler.rpartition(".")[0])
        assert result["outside"] == [], f"{name} imported modules from outside its asset: {result['outside']}"


@pytest.mark.parametrize(
    ("function", "backend"), [("mcp_server", "CryptographyRSAKey"), ("authorization", "RSAKey"), ("token", "RSAKey")]
)
def test_assets_verify_rs256_with_their_backend(probe_assets: dict[str, Path], function: str, backend: str) -> None:
    from tests.helpers import make_key

    key = make_key("kid-probe")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    msg = b"header.payload"
    sig = private.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    result = runtime_probe.run_in_asset(
        probe_assets[function],
        runtime_probe.runtime_dir(),
        VERIFY_CHILD,
        json.dumps(key.public_jwk),
        msg.decode(),
        sig.hex(),
    )
    assert result == {"ok": True, "forged": False, "backend": backend}


TRACING_CHILD = (
    runtime_probe.PRELUDE
    + """
import functions.core.platform.observability as o
xray = sys.modules.get("aws_xray_sdk")
patched = []
if xray is not None:
    from aws_xray_sdk.core import patcher
    patched = sorted(patcher._PATCHED_MODULES)
print(json.dumps({
    "traced": o.tracing_enabled(),
    "xray": getattr(xray, "__file__", None),
    "patched": patched,
}))
"""
)


@pytest.mark.parametrize("tracing", [True, False], ids=["tracing-on", "tracing-off"])
def test_every_asset_traces_from_its_own_aws_xray_sdk_only_when_tracing_is_on(
    probe_assets: dict[str, Path], tracing: bool
) -> None:
    # Lambda active tracing sets the daemon address; LAMBDA_TASK_ROOT makes Powertools Tracer active.
    env = {"LAMBDA_TASK_ROOT": "/var/task", **({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"} if tracing else {})}
    for name, asset in probe_assets.items():
        result = runtime_probe.run_in_asset(asset, runtime_probe.runtime_dir(), TRACING_CHILD, env=env)
        if tracing:
            assert result["xray"] == str(asset / "aws_xray_sdk" / "__init__.pyc"), name
            assert {"botocore", "httplib"} <= set(result["patched"]), name
        else:  # off the cold path: neither Tracer nor aws-xray-sdk imported
            assert result == {"traced": False, "xray": None, "patched": []}, name
        # Only the patchers Tracer uses (infra/pruning.py), and what they import.
        ext = sorted(p.name.split(".")[0] for p in (asset / "aws_xray_sdk" / "ext").iterdir())
        assert ext == ["__init__", "boto_utils", "botocore", "httplib", "resources", "util"], name


CLIENTS_CHILD = (
    runtime_probe.PRELUDE
    + """
from functions.core.platform import aws
clients = {s: getattr(aws, s.replace("-", "_"))() for s in aws.SERVICES}
print(json.dumps({
    "search_paths": aws._session().get_component("data_loader").search_paths,
    "data": str(aws.data_path()),
    "endpoints": {s: c.meta.endpoint_url for s, c in clients.items()},
}))
"""
)


def test_every_asset_makes_its_clients_from_the_shipped_botocore_data(
    probe_assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    from functions.core.platform import aws

    # The child runs with the probe's environment only; the expectation must not take this worker's
    # moto endpoint (AWS_ENDPOINT_URL, set by the integration tests' stack) either.
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    region = runtime_probe.PROBE_ENV["AWS_REGION"]
    expected = {
        s: botocore.session.get_session().create_client(s, region_name=region).meta.endpoint_url for s in aws.SERVICES
    }
    for name, asset in probe_assets.items():
        data = asset / "functions" / "core" / "platform" / aws.DATA_DIR
        assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(aws.SERVICES), name
        result = runtime_probe.run_in_asset(asset, runtime_probe.runtime_dir(), CLIENTS_CHILD)
        assert result == {"search_paths": [str(data)], "data": str(data), "endpoints": expected}, name
