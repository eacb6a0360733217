"""The ``kit`` fixture of the registration unit tests."""

from __future__ import annotations

import pytest

from tests.unit.registration.support import Kit


@pytest.fixture
def kit() -> Kit:
    return Kit()
