"""The layouts ``make bench`` measures and the peers it measures them against.

Per function: the shipped asset (bytecode), the sources-only asset it replaced and the same
sources with a warm ``__pycache__``, all built for this machine's platform; and FastMCP 4.1 in
its own cached venv (``build/fastmcp-venv``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import bytecode, packaging, runtime_probe
from infra.config import REPO_ROOT
from scripts.bench.children import COLD_FASTMCP


def median(values: list[float]) -> float:
    return statistics.median(values)


FASTMCP_VENV = REPO_ROOT / "build" / "fastmcp-venv"
FASTMCP_REQUIREMENTS = ("fastmcp==4.1.*", "mangum==0.22.*")


def fastmcp_python() -> Path:
    """The Python of a cached venv (runtime version) holding FastMCP 4.1 from PyPI."""
    python = FASTMCP_VENV / "bin" / "python"
    marker = FASTMCP_VENV / ".complete"
    if marker.is_file() and marker.read_text(encoding="utf-8") == repr(FASTMCP_REQUIREMENTS):
        return python
    shutil.rmtree(FASTMCP_VENV, ignore_errors=True)
    subprocess.run([bytecode.bytecode_python(), "-m", "venv", str(FASTMCP_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *FASTMCP_REQUIREMENTS], check=True)
    marker.write_text(repr(FASTMCP_REQUIREMENTS), encoding="utf-8")
    return python


def run_fastmcp(python: Path, config: dict[str, str], event: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(python), "-I", "-B", "-c", COLD_FASTMCP, json.dumps(config), event],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(FASTMCP_VENV)},
        cwd=FASTMCP_VENV,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"FastMCP cold start failed:\n{proc.stderr.strip()[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def build_twins(work: Path) -> dict[str, dict[str, Path]]:
    """Per function: the shipped layout and the sources-only layout, for this machine."""
    from functions.core.platform.routes import FUNCTIONS

    machine = f"manylinux2014_{os.uname().machine}"
    twins: dict[str, dict[str, Path]] = {}
    for name in FUNCTIONS:
        twins[name] = {}
        for variant, compiled in (("shipped", True), ("sources", False)):
            out = work / variant / name
            out.mkdir(parents=True)
            packaging.build_asset(name, out, platform=machine, bytecode=compiled)
            twins[name][variant] = out
        # The best case: the sources plus the bytecode cache Python writes for itself.
        cached = work / "cached" / name
        shutil.copytree(twins[name]["sources"], cached, symlinks=True)
        twins[name]["cached"] = cached
        for variant in ("shipped", "sources"):  # read-only, like /var/task
            read_only(twins[name][variant])
    return twins


def read_only(root: Path) -> None:
    for dirpath, dirs, names in os.walk(root):
        for entry in (*dirs, *names):
            path = Path(dirpath, entry)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o222)
    root.chmod(root.stat().st_mode & ~0o222)


def warm_pycache(asset: Path, runtime: Path, module: str) -> None:
    """Import ``module`` once from ``asset`` with bytecode written: its warm ``__pycache__``."""
    code = runtime_probe.PRELUDE + "import importlib; importlib.import_module(sys.argv[2]); print('{}')"
    runtime_probe.run_in_asset(asset, runtime, code, module, write_bytecode=True)


def interleaved(rounds: int, cases: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            samples[name].append(case())
    return samples
