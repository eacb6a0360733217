"""The ``facade`` fixture of the authorization function's unit tests: every repository in memory."""

from __future__ import annotations

import pytest

from tests.facade_fakes import Facade


@pytest.fixture
def facade() -> Facade:
    return Facade()
