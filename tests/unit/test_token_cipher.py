"""KMS encryption of Cognito tokens, bound to its item by the encryption context (moto, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.core.cognito.token_cipher import CiphertextRejected, KmsTokenCipher, grant_context, txn_context
from functions.core.platform.errors import DependencyError


@pytest.fixture
def kms_cipher(monkeypatch: pytest.MonkeyPatch) -> Iterator[KmsTokenCipher]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        yield KmsTokenCipher(key_id, client)


def test_kms_round_trip_with_context(kms_cipher: KmsTokenCipher) -> None:
    blob = kms_cipher.encrypt(b"cognito-refresh", grant_context("g1"))
    assert b"cognito-refresh" not in blob
    assert kms_cipher.decrypt(blob, grant_context("g1")) == b"cognito-refresh"


@pytest.mark.parametrize("other", [grant_context("g2"), txn_context("g1"), {}])
def test_ciphertext_copied_to_another_item_does_not_decrypt(kms_cipher: KmsTokenCipher, other: dict) -> None:
    blob = kms_cipher.encrypt(b"cognito-refresh", grant_context("g1"))
    with pytest.raises(CiphertextRejected):
        kms_cipher.decrypt(blob, other)


def test_kms_outage_is_a_dependency_error() -> None:
    class Broken:
        def encrypt(self, **kw: Any) -> Any:
            raise ClientError({"Error": {"Code": "KMSInternalException"}}, "Encrypt")

        decrypt = encrypt

    cipher = KmsTokenCipher("k", Broken())
    with pytest.raises(DependencyError):
        cipher.encrypt(b"x", grant_context("g"))
    with pytest.raises(DependencyError):
        cipher.decrypt(b"x", grant_context("g"))
