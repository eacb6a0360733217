"""``make test``: run the app's own tests (``<app>/tests``) in a process of their own.

The app is the one ``make dev`` serves (``KIT_APP_PATH``, else cdk.json's ``kit:app``). A
process of its own, because the catalogue is per process and the kit's tests use the kit's
test app.
"""

from __future__ import annotations

import os
import subprocess
import sys

from functions.core.platform.kit_app import APP_PATH_ENV
from local.config import select_app


def main() -> int:
    app = select_app()
    tests = app / "tests"
    if not tests.is_dir():
        print(f"{app} has no tests/ folder: no app tests to run")
        return 0
    command = [sys.executable, "-m", "pytest", str(tests), "-p", "no:cacheprovider", *sys.argv[1:]]
    return subprocess.call(command, env={**os.environ, APP_PATH_ENV: str(app)})  # noqa: S603


if __name__ == "__main__":
    raise SystemExit(main())
