"""The facade fakes' own checks (tests/facade_fakes.py)."""

from __future__ import annotations

import pytest

from functions.core.cognito.token_cipher import CiphertextRejected
from tests.facade_fakes import CONF_REDIRECT, PUBLIC_REDIRECT, FakeCipher, loopback_matcher


def test_fake_cipher_binds_context() -> None:
    cipher = FakeCipher()
    blob = cipher.encrypt(b"x", {"kit": "upstream-token", "grant": "a"})
    assert cipher.decrypt(blob, {"kit": "upstream-token", "grant": "a"}) == b"x"
    with pytest.raises(CiphertextRejected):
        cipher.decrypt(blob, {"kit": "upstream-token", "grant": "b"})


def test_loopback_matcher() -> None:
    assert loopback_matcher("http://127.0.0.1:9999/callback", [PUBLIC_REDIRECT])
    assert not loopback_matcher("http://127.0.0.1:9999/other", [PUBLIC_REDIRECT])
    assert not loopback_matcher("https://agent.example.org/cb2", [CONF_REDIRECT])
