"""The loopback document servers, shared by the CIMD fetch tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cimd.servers import Servers, running_servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    yield from running_servers(tmp_path_factory)
