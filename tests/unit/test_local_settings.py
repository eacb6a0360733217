"""make dev's own settings from the environment: seconds within their bound, or a clear exit."""

from __future__ import annotations

import pytest

from local.config import LocalConfig, seconds_from_env
from local.poller import poll_seconds


@pytest.mark.parametrize("raw", ["0", "-1", "31", "nan", "inf", "ten", ""])
def test_a_gateway_timeout_outside_its_bound_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("GATEWAY_TIMEOUT_SECONDS", raw)
    with pytest.raises(SystemExit, match="GATEWAY_TIMEOUT_SECONDS must be a number of seconds in \\(0, 30\\]"):
        LocalConfig.from_env()


def test_seconds_default_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIT_TEST_SECONDS", raising=False)
    assert seconds_from_env("KIT_TEST_SECONDS", 3, maximum=60) == 3.0
    monkeypatch.setenv("KIT_TEST_SECONDS", "60")
    assert seconds_from_env("KIT_TEST_SECONDS", 3, maximum=60) == 60.0
    monkeypatch.setenv("DEPROVISION_POLL_SECONDS", "61")
    with pytest.raises(SystemExit, match="DEPROVISION_POLL_SECONDS"):
        poll_seconds()
    monkeypatch.setenv("DEPROVISION_POLL_SECONDS", "0.5")
    assert poll_seconds() == 0.5
