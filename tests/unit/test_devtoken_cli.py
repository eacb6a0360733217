"""local/devtoken.py (`make token`): failures are one clear line, never a traceback."""

from __future__ import annotations

import socket

import pytest

from local import devtoken


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_make_dev_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()  # nothing listens there: make dev is not running
    for name in ("PORT", "MOTO_PORT", "COGNITO_PORT"):
        monkeypatch.setenv(name, str(port))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(SystemExit) as exited:
        devtoken.main(["alice@example.com", "--password", "x"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "cannot reach make dev" in err and "Traceback" not in err
