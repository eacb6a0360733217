"""Lambda assets without Docker: pip-install for the Lambda platform, locally, with a cache.

Each function's asset root holds the ``functions`` package reduced to ``functions/__init__.py``,
``functions/core/`` and that function's own package, plus the function's third-party
requirements installed as manylinux2014 aarch64 wheels for CPython 3.13, the Lambda runtime
(``--only-binary`` never builds, so any build machine can install them).

Bytecode: the Lambda code directory is read-only, so an asset without bytecode compiles every
module at every cold start. The asset therefore ships bytecode made by a CPython of exactly
the runtime's minor version (:func:`infra.bytecode.bytecode_python` finds it): third-party packages as
sourceless ``.pyc`` files in place of their sources (smaller than sources plus bytecode),
the kit's own code as sources plus ``__pycache__/*.cpython-313.pyc`` in unchecked-hash mode
(PEP 552), which never go stale by file times, whatever copying or zipping does to them.
Distributions and subpackages that no function imports are pruned (:data:`PRUNED`), and
extension modules lose their static symbol tables (:mod:`infra.elf`).

Per-function requirements live next to the code in ``functions/<name>/requirements.txt``;
a function without one gets :data:`CORE_REQUIREMENTS` (what ``functions/core`` imports).
boto3/botocore are never bundled: the Lambda Python runtime provides them. Every asset
carries the botocore data its clients read, pruned from the build environment's botocore
(:mod:`infra.aws_models`), so that creating a client reads a few small files.

The app folder (``kit:app``) goes into every asset as the package ``kit_app``: the whole
folder (without ``tests/``) plus its own ``requirements.txt`` into the MCP function, only its
``app.json`` (the scope catalogue) into the others (``functions.core.platform.kit_app`` finds it there).

Installing for every synth is slow, so the platform install is cached under
``build/lambda-deps/<sha256 of requirements + platform>/`` (gitignored). A cache hit costs a
directory copy; on a miss pip runs once. If pip fails (offline, index down) the newest
earlier install for the same function is used, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import jsii

from functions.core.platform import kit_app
from functions.core.platform.kit_app import MANIFEST, PACKAGE
from infra import aws_models
from infra.bytecode import LAMBDA_PYTHON, BytecodeError, compile_tree
from infra.config import REPO_ROOT
from infra.elf import strip_symbols
from infra.pruning import PRUNED, PRUNED_BY_FUNCTION

FUNCTIONS_DIR: Final = REPO_ROOT / "functions"
# The function that runs the app's tools: the only one given the app's code and requirements.
APP_FUNCTION: Final = "mcp_server"
DEPS_CACHE_DIR: Final = REPO_ROOT / "build" / "lambda-deps"

# The Lambda platform: Python 3.13 on Graviton (arm64). Not 3.14: bytecode must come from the
# runtime's own minor version and the build machines have CPython 3.13, not 3.14 (README,
# "Performance": shipped bytecode halves every function's init).
PIP_PLATFORM: Final = "manylinux2014_aarch64"
PIP_PYTHON_VERSION: Final = "{}.{}".format(*LAMBDA_PYTHON)
PIP_IMPLEMENTATION: Final = "cp"

# What functions/core imports; the fallback for a function without requirements.txt.
CORE_REQUIREMENTS: Final = (
    "aws-lambda-powertools>=3.0,<4",
    "pydantic>=2.7,<3",
    "python-jose[cryptography]>=3.5.0",
    "aws-xray-sdk>=2.14,<3",
)

# Provided by the Lambda Python runtime: never bundled, even when a requirement pulls them in
# (their own dependencies are left alone: a requirement may need a newer urllib3 than the runtime's).
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer")

# Unzipped size budgets (Lambda's own limit is 250 MB unzipped): what is uploaded, unzipped
# and read at every cold start. Only the MCP function carries the MCP SDK and its server stack.
MAX_ASSET_BYTES: Final = 25_000_000
DEFAULT_ASSET_BUDGET_BYTES: Final = 12_000_000
ASSET_BUDGET_BYTES: Final[dict[str, int]] = {"mcp_server": MAX_ASSET_BYTES}

# Kept from *.dist-info: importlib.metadata needs METADATA (pydantic reads versions and
# plugin entry points at import time); licences are kept for compliance.
_DIST_INFO_KEEP: Final = frozenset({"METADATA", "entry_points.txt", "top_level.txt", "licenses", "LICENSE"})
_JUNK_DIRS: Final = frozenset({"__pycache__", "tests", "test", "testing_data"})
_JUNK_SUFFIXES: Final = (".pyc", ".pyo", ".pyi")


class BundlingError(RuntimeError):
    """An asset could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class BundleResult:
    function: str
    bytes: int
    files: int
    deps_cache: str  # "hit", "miss" or "stale"
    seconds: float


# Filled while the stack is constructed (bundling runs then); app.py prints it after synth.
BUNDLE_REPORT: list[BundleResult] = []


def requirements_for(function: str, app_root: Path | None = None) -> tuple[str, ...]:
    """The function's requirement lines (comments and blanks dropped), or the core set.

    With ``app_root`` (the MCP function), the app's own ``requirements.txt`` is added.
    """
    path = FUNCTIONS_DIR / function / "requirements.txt"
    own = _requirement_lines(path) if path.is_file() else CORE_REQUIREMENTS
    app = app_root / "requirements.txt" if app_root is not None else None
    return tuple(dict.fromkeys((*own, *(_requirement_lines(app) if app is not None and app.is_file() else ()))))


def _requirement_lines(path: Path) -> tuple[str, ...]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if line.startswith("-"):
                raise BundlingError(f"{path}: pip options ({line!r}) are not supported; list requirements only")
            lines.append(line)
    return tuple(lines)


def deps_cache_key(
    requirements: tuple[str, ...], platform: str = PIP_PLATFORM, pruned: tuple[str, ...] = PRUNED, bytecode: bool = True
) -> str:
    spec = {
        "requirements": sorted(requirements),
        "platform": platform,
        "python": PIP_PYTHON_VERSION,
        "implementation": PIP_IMPLEMENTATION,
        "strip": sorted(_JUNK_DIRS) + sorted(_DIST_INFO_KEEP) + sorted(RUNTIME_PROVIDED),
        "pruned": sorted(pruned),
        "bytecode": "sourceless" if bytecode else "none",
        "elf": "no-symtab",
        "layout": 3,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def tree_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if not p.is_symlink():
                total += p.stat().st_size
                files += 1
    return total, files


def strip_tree(root: Path) -> None:
    """Remove what the runtime never reads: caches, bytecode, tests, stubs, install records."""
    for dirpath, dirs, names in os.walk(root, topdown=True):
        here = Path(dirpath)
        for d in list(dirs):
            if d in _JUNK_DIRS or (here == root and (d == "bin" or d.lower().startswith(RUNTIME_PROVIDED))):
                shutil.rmtree(here / d)
                dirs.remove(d)
            elif d.endswith(".dist-info"):
                dist = here / d
                for entry in dist.iterdir():
                    if entry.name not in _DIST_INFO_KEEP:
                        if entry.is_dir():
                            shutil.rmtree(entry)
                        else:
                            entry.unlink()
                dirs.remove(d)
        for name in names:
            if name.endswith(_JUNK_SUFFIXES):
                (here / name).unlink()


def pruned_for(function: str) -> tuple[str, ...]:
    """What :func:`prune_tree` removes from ``function``'s dependencies."""
    return PRUNED + PRUNED_BY_FUNCTION.get(function, ())


def prune_tree(root: Path, pruned: tuple[str, ...]) -> None:
    """Remove ``pruned`` packages, modules and subpackages (and their ``*.dist-info``) from ``root``."""
    for rel in pruned:
        target = root / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.is_file():
            target.unlink()
        if "/" in rel:
            continue
        for path in root.glob(f"{rel}.*"):  # a top-level module or extension (_cffi_backend.*.so)
            path.unlink()
        for dist in root.glob("*.dist-info"):
            if dist.name.split("-", 1)[0].lower() == rel.lower():
                shutil.rmtree(dist)


def _pip_install(requirements: tuple[str, ...], target: Path, platform: str = PIP_PLATFORM) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--progress-bar=off",
        "--no-compile",  # compiled afterwards by the runtime's own minor version (compile_tree)
        "--only-binary=:all:",
        "--platform",
        platform,
        "--implementation",
        PIP_IMPLEMENTATION,
        "--python-version",
        PIP_PYTHON_VERSION,
        "--target",
        str(target),
        *requirements,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise BundlingError(f"pip install failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")


def platform_deps(
    function: str,
    requirements: tuple[str, ...],
    cache_dir: Path = DEPS_CACHE_DIR,
    platform: str = PIP_PLATFORM,
    bytecode: bool = True,
) -> tuple[Path, str]:
    """A stripped, pruned, compiled install of ``requirements``: cached, else installed, else stale.

    ``platform``: the wheel platform tag; the Lambda's by default, the build machine's for
    running an asset here (:mod:`infra.runtime_probe`). ``bytecode=False``: sources only, as
    assets were before bytecode shipped (for ``make bench``'s comparison).
    """
    key = deps_cache_key(requirements, platform, pruned_for(function), bytecode)
    cached = cache_dir / key
    if (cached / ".complete").is_file():
        return cached, "hit"
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
    try:
        _pip_install(requirements, work, platform)
        strip_tree(work)
        prune_tree(work, pruned_for(function))
        for library in work.rglob("*.so"):
            strip_symbols(library)
        if bytecode:
            compile_tree(work, sourceless=True)
        (work / ".complete").write_text(
            json.dumps({"function": function, "requirements": list(requirements)}), encoding="utf-8"
        )
        try:
            work.rename(cached)  # atomic: a parallel synth either wins or finds the cache
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
        return cached, "miss"
    except BytecodeError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except BundlingError as exc:
        shutil.rmtree(work, ignore_errors=True)
        stale = _newest_install_for(function, cache_dir)
        if stale is None:
            raise BundlingError(
                f"{function}: cannot install its Lambda dependencies and no earlier install is cached "
                f"in {cache_dir}. Synthesis needs PyPI (or a pip index configured via PIP_INDEX_URL) once.\n{exc}"
            ) from exc
        print(
            f"WARNING {function}: pip failed, using an earlier cached install {stale.name} "
            f"that may not match requirements {list(requirements)}",
            file=sys.stderr,
        )
        return stale, "stale"


def _newest_install_for(function: str, cache_dir: Path) -> Path | None:
    candidates = []
    for marker in cache_dir.glob("*/.complete"):
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("function") == function:
                candidates.append(marker)
        except (OSError, ValueError):
            continue
    if not candidates:
        return None
    return max(candidates, key=lambda m: m.stat().st_mtime).parent


def copy_app(app_root: Path, output: Path, *, with_tools: bool) -> None:
    """The app as ``<output>/kit_app/``: the whole folder with its tools, else ``app.json`` only."""
    dest = output / PACKAGE
    if with_tools:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt", "tests", ".*")
        shutil.copytree(app_root, dest, ignore=ignore, dirs_exist_ok=True)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(app_root / MANIFEST, dest / MANIFEST)


def copy_function_code(function: str, output: Path, functions_dir: Path | None = None) -> None:
    """``functions/__init__.py``, ``functions/core/`` and ``functions/<function>/`` only."""
    functions_dir = functions_dir or FUNCTIONS_DIR
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt", "tests")
    dest = output / "functions"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(functions_dir / "__init__.py", dest / "__init__.py")
    shutil.copytree(functions_dir / "core", dest / "core", ignore=ignore, dirs_exist_ok=True)
    package = functions_dir / function
    if package.is_dir():
        shutil.copytree(package, dest / function, ignore=ignore, dirs_exist_ok=True)
    else:
        print(f"WARNING {function}: {package} does not exist yet; its asset has no handler", file=sys.stderr)


def build_asset(
    function: str,
    out: Path,
    *,
    app_root: Path | None = None,
    cache_dir: Path = DEPS_CACHE_DIR,
    platform: str = PIP_PLATFORM,
    bytecode: bool = True,
) -> tuple[int, int, str]:
    """Lay ``function``'s asset out in ``out``: ``(bytes, files, deps cache state)``.

    ``app_root``: the app folder (default: this process's, ``functions.core.platform.kit_app``); the
    MCP function (:data:`APP_FUNCTION`) gets all of it and its requirements, the others its
    ``app.json`` only.
    """
    app_root = app_root or kit_app.app_dir()
    with_tools = function == APP_FUNCTION
    requirements = requirements_for(function, app_root if with_tools else None)
    deps, state = platform_deps(function, requirements, cache_dir, platform, bytecode)
    shutil.copytree(deps, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
    copy_function_code(function, out)
    aws_models.write_data(out / aws_models.ASSET_DATA_DIR)
    copy_app(app_root, out, with_tools=with_tools)
    if bytecode:
        compile_tree(out / "functions", sourceless=False)
        if with_tools:
            compile_tree(out / PACKAGE, sourceless=False)
    size, files = tree_size(out)
    return size, files, state


def asset_budget(function: str) -> int:
    """The unzipped size budget of ``function``'s asset in bytes."""
    return ASSET_BUDGET_BYTES.get(function, DEFAULT_ASSET_BUDGET_BYTES)


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundler:
    """``ILocalBundling``: builds one function's asset on this machine, no Docker needed."""

    def __init__(
        self, function: str, app_root: Path, *, cache_dir: Path = DEPS_CACHE_DIR, max_bytes: int | None = None
    ) -> None:
        self.function = function
        self.app_root = app_root
        self.cache_dir = cache_dir
        self.max_bytes = asset_budget(function) if max_bytes is None else max_bytes

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally; nothing in it is needed here.
        started = time.monotonic()
        size, files, state = build_asset(
            self.function, Path(output_dir), app_root=self.app_root, cache_dir=self.cache_dir
        )
        if size > self.max_bytes:
            raise BundlingError(
                f"{self.function}: asset is {size / 1e6:.1f} MB unzipped, over the {self.max_bytes / 1e6:.0f} MB budget"
            )
        BUNDLE_REPORT.append(BundleResult(self.function, size, files, state, time.monotonic() - started))
        return True


def lambda_code(function: str, app_root: Path) -> cdk.aws_lambda.Code:
    """The function's asset with the app (see :func:`copy_app`), bundled locally; never Docker."""
    bundler = LocalPythonBundler(function, app_root)
    return cdk.aws_lambda.Code.from_asset(
        str(FUNCTIONS_DIR),
        # Hash the bundle, not the source tree: the asset changes exactly when its content does.
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Required by the API; used only if local bundling declined, which ours never does
            # (it raises with an explanation instead, because the machine may have no Docker).
            image=cdk.aws_lambda.Runtime.PYTHON_3_13.bundling_image,
            local=bundler,
            command=["bash", "-c", f"echo 'local bundling is required for {function}' >&2; exit 1"],
            # CDK caches staging by source path + bundling options (the local bundler object is
            # not part of that key): the function name keeps two functions' assets apart.
            environment={"KIT_FUNCTION": function, "KIT_APP": str(app_root)},
        ),
    )


def format_report(results: list[BundleResult]) -> str:
    lines = ["Lambda assets (unzipped):"]
    for r in sorted(results, key=lambda r: r.function):
        lines.append(
            f"  {r.function:<14} {r.bytes / 1e6:7.1f} MB (budget {asset_budget(r.function) / 1e6:.0f})"
            f"  {r.files:6d} files  deps cache {r.deps_cache:<5} "
            f"{r.seconds:5.1f} s"
        )
    return "\n".join(lines)
