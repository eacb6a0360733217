"""KMS encryption of the Cognito tokens the kit keeps server-side.

Each ciphertext is bound to its item by a KMS encryption context (the transaction or the
grant), so a ciphertext copied to another item does not decrypt (docs/storage-schema.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from functions.core.platform import aws
from functions.core.platform.aws import aws_call


class TokenCipher(Protocol):
    """Authenticated encryption bound to an encryption context (the item the plaintext belongs to).

    Holds Cognito's tokens at rest (docs/storage-schema.md: KMS-encrypted). ``context`` is the
    encryption context (:func:`txn_context`, :func:`grant_context`): the same context must be given to
    decrypt, so a ciphertext copied to another item does not decrypt.
    """

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """The ciphertext of ``plaintext`` (at most 4,096 bytes: KMS ``Encrypt``) under ``context``.

        Raises ``DependencyError`` (503, safe to retry) when KMS is unavailable or refuses.
        """
        ...

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext; ``CiphertextRejected`` for a wrong context or tampering, ``DependencyError`` for an outage."""
        ...


def txn_context(txn_id: str) -> dict[str, str]:
    """The encryption context of the Cognito tokens kept on a pending authorization request."""
    return {"kit": "upstream-token", "txn": txn_id}


def grant_context(grant_id: str) -> dict[str, str]:
    """The encryption context of the Cognito tokens kept on a grant (``grant_id`` = its ``origin_jti``)."""
    return {"kit": "upstream-token", "grant": grant_id}


class CiphertextRejected(Exception):
    """KMS refused to decrypt (wrong context or tampered ciphertext): treat the item as invalid."""


# KMS refusing the ciphertext or its context: the stored item is invalid (fail closed), not an outage.
_REJECTED: Final = {"InvalidCiphertextException": CiphertextRejected, "IncorrectKeyException": CiphertextRejected}


class KmsTokenCipher:
    """``TokenCipher`` with one KMS key (``Encrypt``/``Decrypt`` with an encryption context)."""

    def __init__(self, key_id: str, client: Any = None) -> None:
        self._key_id, self._client = key_id, client

    @property
    def _kms(self) -> Any:
        return self._client or aws.kms()

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """KMS ``Encrypt`` under ``context``; ``DependencyError`` on any KMS failure (503)."""
        with aws_call("KMS encrypt"):
            resp = self._kms.encrypt(KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=dict(context))
        return bytes(resp["CiphertextBlob"])

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """KMS ``Decrypt`` under ``context``.

        ``CiphertextRejected`` when KMS refuses the ciphertext or context (the item is invalid,
        fail closed); ``DependencyError`` (503) for every other failure.
        """
        with aws_call("KMS decrypt", _REJECTED):
            resp = self._kms.decrypt(KeyId=self._key_id, CiphertextBlob=ciphertext, EncryptionContext=dict(context))
        return bytes(resp["Plaintext"])
