"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.core.clients import cimd_fetch
from tests.cimd_support import URL, FakeNetwork


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNetwork]:
    """The network a Client ID Metadata Document fetch meets: ``URL``'s host, scripted per test."""
    network = FakeNetwork(URL)
    monkeypatch.setattr(cimd_fetch.socket, "create_connection", network.create_connection)
    yield network
    network.close()
