"""The demo app's tests run with the demo as the app (its own process: ``make test``)."""

from __future__ import annotations

import os
from pathlib import Path

from functions.core.platform.kit_app import APP_PATH_ENV
from functions.mcp_server.app_loader import import_server

APP = Path(__file__).resolve().parent.parent
os.environ[APP_PATH_ENV] = str(APP)
import_server(APP)  # the demo's modules are importable as kit_app.*
