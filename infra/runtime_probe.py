"""Run a built Lambda asset the way the Python runtime does, on this machine.

The Lambda runtime puts the asset (``/var/task``, read-only) first on ``sys.path`` and
provides boto3, botocore and their dependencies itself. :func:`run_in_asset` reproduces that
with the CPython of the runtime's minor version (:func:`infra.packaging.bytecode_python`): an
isolated interpreter (``-I``: no user site, no ``PYTHONPATH``, not the repository), the asset
directory, a directory holding only the runtime-provided packages (copied from the build
environment, where they are pure Python, and compiled, as the runtime ships them), and no
bytecode written anywhere.

Used by the asset tests (every handler module imports from its built asset: nothing pruned
is needed) and by ``make bench`` (init time as shipped).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from functions.core.platform.kit_app import PACKAGE, load_manifest
from functions.core.platform.settings import Env
from infra.bytecode import bytecode_python, compile_tree
from infra.config import REPO_ROOT

# What the Lambda Python runtime ships besides the standard library (boto3 and its closure).
RUNTIME_MODULES: Final = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
RUNTIME_CACHE_DIR: Final = REPO_ROOT / "build" / "lambda-runtime"

# A function environment good enough to import every handler (no AWS call happens at import).
PROBE_ENV: Final[Mapping[str, str]] = {
    Env.BASE_URL: "https://mcp.example.com",
    Env.USER_POOL_ID: "us-east-1_probe",
    Env.REGION: "us-east-1",
    Env.GATEWAY_CLIENT_ID: "probe-client",
    Env.GRANTS_TABLE: "grants",
    Env.CLIENTS_TABLE: "clients",
    Env.ARTEFACTS_TABLE: "artefacts",
    Env.KMS_KEY_ID: "alias/probe",
    Env.COGNITO_DOMAIN_URL: "https://probe.auth.us-east-1.amazoncognito.com",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "probe",
    "AWS_SECRET_ACCESS_KEY": "probe",
    "POWERTOOLS_SERVICE_NAME": "probe",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

PRELUDE: Final = """
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
"""

IMPORT_CHILD: Final = (
    PRELUDE
    + """
import importlib, os
t0 = time.perf_counter()
importlib.import_module(sys.argv[2])
init_ms = (time.perf_counter() - t0) * 1e3
roots = json.loads(sys.argv[1])
outside = sorted(
    name for name, mod in list(sys.modules.items())
    if getattr(mod, "__file__", None) and not mod.__file__.startswith(tuple(roots))
    and not mod.__file__.startswith(sys.base_prefix)
)
print(json.dumps({"init_ms": init_ms, "outside": outside, "modules": len(sys.modules)}))
"""
)


def runtime_dir(dest: Path = RUNTIME_CACHE_DIR) -> Path:
    """``dest`` holding the runtime-provided packages, compiled as the Lambda runtime ships them.

    Copied from the build environment (pure Python) and compiled once by the runtime's
    version; kept as a cache (``build/`` is gitignored) and rebuilt when a version changes.
    """
    versions = {name: _version_of(name) for name in RUNTIME_MODULES}
    marker = dest / ".complete"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == versions:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".runtime-", dir=dest.parent))
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed in the build environment")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, work / origin.name)
    compile_tree(work, sourceless=False)
    (work / ".complete").write_text(json.dumps(versions), encoding="utf-8")
    try:
        work.rename(dest)
    except OSError:  # a parallel run finished first
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _version_of(module: str) -> str:
    try:
        return importlib.metadata.version({"dateutil": "python-dateutil"}.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_in_asset(
    asset: Path,
    runtime: Path,
    code: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    write_bytecode: bool = False,
) -> dict[str, Any]:
    """Run ``code`` (it reads ``sys.argv[2:]`` and prints one JSON line) against ``asset``.

    ``write_bytecode``: let the interpreter write ``__pycache__`` (a writable copy of an asset
    warmed for ``make bench``'s best case); otherwise nothing is written, as on Lambda.
    """
    paths = json.dumps([str(asset), str(runtime)])
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **PROBE_ENV,
        # The packaged app's tables (every asset holds its kit_app/app.json).
        Env.APP_TABLES: json.dumps({t.name: f"probe-{t.name}" for t in load_manifest(asset / PACKAGE).tables}),
        **(env or {}),
    }
    proc = subprocess.run(  # noqa: S603
        # -I ignores PYTHON* variables, so -B (not PYTHONDONTWRITEBYTECODE) keeps bytecode unwritten.
        [bytecode_python(), "-I", *(() if write_bytecode else ("-B",)), "-c", code, paths, *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=asset,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{asset.name}: {args} failed:\n{proc.stderr.strip()[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def import_handler(asset: Path, runtime: Path, module: str) -> dict[str, Any]:
    """Import ``module`` from ``asset``: init time in ms and modules found outside the asset."""
    return run_in_asset(asset, runtime, IMPORT_CHILD, module)
