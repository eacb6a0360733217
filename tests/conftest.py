"""Every kit test runs against the kit's own test app (tests/fixtures/app), never the demo.

Set before any kit module loads the catalogue; subprocesses (``python -m local`` in the e2e
suite) inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.core.platform.kit_app import APP_PATH_ENV

TEST_APP = Path(__file__).resolve().parent / "fixtures" / "app"
os.environ[APP_PATH_ENV] = str(TEST_APP)

# The test app's modules are importable as ``kit_app.*`` (e.g. ``kit_app.store``) in every test.
from functions.mcp_server.app_loader import import_server  # noqa: E402

import_server(TEST_APP)


from tests.observability_capture import Captured, capturing  # noqa: E402


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    """What the code under test logged and counted (Powertools lines and EMF documents)."""
    with capturing(monkeypatch, capsys) as captured:
        yield captured
