"""The facade fakes' own checks (tests/facade_fakes.py)."""

from __future__ import annotations

import pytest

from functions.core.cognito.token_cipher import CiphertextRejected
from tests.facade_fakes import FakeCipher


def test_fake_cipher_binds_context() -> None:
    cipher = FakeCipher()
    blob = cipher.encrypt(b"x", {"kit": "upstream-token", "grant": "a"})
    assert cipher.decrypt(blob, {"kit": "upstream-token", "grant": "a"}) == b"x"
    with pytest.raises(CiphertextRejected):
        cipher.decrypt(blob, {"kit": "upstream-token", "grant": "b"})
