"""Bytecode for the Lambda runtime: made by a CPython of exactly the runtime's minor version.

The Lambda code directory is read-only, so the runtime can neither write nor refresh
bytecode: what the asset ships is what loads, and only bytecode of the runtime's own minor
version loads at all (the magic number differs between minor versions).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

LAMBDA_PYTHON: Final = (3, 13)
BYTECODE_PYTHON_ENV: Final = "KIT_BYTECODE_PYTHON"
LAMBDA_TASK_ROOT: Final = "/var/task"
_WANTED_VERSION: Final = "{}.{}".format(*LAMBDA_PYTHON)


class BytecodeError(RuntimeError):
    """No interpreter of the runtime's version, or the compiler failed; the message says what to do."""


_VERSION_PROBE: Final = "import sys; print(sys.implementation.name, *sys.version_info[:2])"


@functools.cache
def bytecode_python() -> str:
    """An interpreter of exactly the Lambda runtime's version (CPython 3.13), else ``BytecodeError``.

    Looked for in ``$KIT_BYTECODE_PYTHON``, then ``python3.13`` on ``PATH``, then pyenv's
    versions (``$PYENV_ROOT`` or ``~/.pyenv``). Only its compiler is used: nothing is
    installed into it and nothing is downloaded.
    """
    wanted = "python{}.{}".format(*LAMBDA_PYTHON)
    candidates = [os.environ.get(BYTECODE_PYTHON_ENV), shutil.which(wanted)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pyenv_pythons = sorted(pyenv_root.glob(f"versions/{_WANTED_VERSION}*/bin/{wanted}"), reverse=True)
    candidates += [str(p) for p in pyenv_pythons]
    expected = f"cpython {LAMBDA_PYTHON[0]} {LAMBDA_PYTHON[1]}"
    for candidate in filter(None, candidates):
        proc = subprocess.run([candidate, "-c", _VERSION_PROBE], capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode == 0 and proc.stdout.strip() == expected:
            return candidate
    raise BytecodeError(
        f"no CPython {_WANTED_VERSION} found to compile the Lambda bytecode with (the runtime loads only "
        f"bytecode of its own minor version). Install it (e.g. `pyenv install {_WANTED_VERSION}`) or set "
        f"{BYTECODE_PYTHON_ENV} to its path."
    )


def compile_tree(root: Path, *, sourceless: bool) -> None:
    """Compile every ``.py`` under ``root`` with :func:`bytecode_python`.

    ``sourceless``: ``X.pyc`` beside ``X.py`` (``compileall -b``), then ``X.py`` removed,
    which the import system loads without any validation. Otherwise ``__pycache__`` files in
    unchecked-hash mode (PEP 552), kept valid whatever happens to file times. A file that
    does not compile (code for another Python, never imported) keeps its source.
    """
    cmd = [bytecode_python(), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    # File names in the bytecode (tracebacks) as the runtime sees them: /var/task/<module path>.
    cmd += ["-s", str(root.parent if root.name == "functions" else root), "-p", LAMBDA_TASK_ROOT]
    if sourceless:
        cmd.append("-b")
    proc = subprocess.run([*cmd, str(root)], capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode not in (0, 1):  # 1: some file did not compile (reported below, kept as source)
        raise BytecodeError(f"compileall failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    if proc.returncode == 1:
        print(f"WARNING: some files under {root} kept as source:\n{proc.stdout.strip()[-1000:]}", file=sys.stderr)
    if sourceless:
        for source in root.rglob("*.py"):
            if source.with_suffix(".pyc").is_file():
                source.unlink()
