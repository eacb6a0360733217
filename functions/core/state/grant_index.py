"""Grants and remembered consents by user and by client: the grants table's two global secondary indexes.

The management plane (the person's connected-agents page, the admin CLI, deprovisioning)
must find every grant of a user or of a client without a Scan. Both indexes are keyed on
attributes the ``GRANT#`` and ``CONSENT#`` items already carry (docs/storage-schema.md,
grants table), with the item ``kind`` as sort key, so one Query selects one kind:

* ``by_user``: partition ``sub``, sort ``kind`` (``RT#`` items carry no ``sub``, so they are
  not in it);
* ``by_client``: partition ``client_id``, sort ``kind`` (``RT#`` items are in it under
  ``kind = refresh_token``, and a ``kind = grant`` Query skips them by key).

Both project only the non-secret attributes a listing shows (``INCLUDE``): never the KMS
ciphertext of Cognito's refresh token, nor the refresh-token chain head. Index reads are
eventually consistent (DynamoDB offers nothing else on a GSI): a grant created a moment ago
may be missing from a listing, and every write decision (revocation) re-reads the base item
with a strongly consistent GetItem.

A deployment may lack an index (``kit:grantIndexes``, ``GRANT_INDEXES``: CloudFormation adds
one index per update, README "Upgrade the kit"). Reading one it lacks raises
:class:`IndexNotDeployed` before any call: the feature fails closed with a clear error,
never an empty listing (and the function holds no IAM permission on a missing index).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, Literal

from functions.core.platform.ddb import DynamoTable, dependency_call, from_item
from functions.core.platform.topology import GRANT_INDEX_NAMES, GRANTS_BY_CLIENT, GRANTS_BY_USER, IndexSpec
from functions.core.state.consent import CONSENTS, Consent
from functions.core.state.grants import GRANTS, Grant

IndexedKind = Literal["grant", "consent"]


class IndexNotDeployed(Exception):
    """A feature needs a grants-table index this deployment did not create (``kit:grantIndexes``).

    Not a ``DependencyError``: retrying does not help until the index is deployed. ``index``
    is the index's name; the message says what to deploy.
    """

    def __init__(self, index: str) -> None:
        super().__init__(
            f"this deployment has no {index!r} index on the grants table (kit:grantIndexes): "
            f"deploy the stack with {index!r} in kit:grantIndexes first (README, 'Upgrade the kit')"
        )
        self.index = index


def require_index(available: Collection[str], index: IndexSpec) -> None:
    """Raise :class:`IndexNotDeployed` unless ``index`` is one of the ``available`` index names."""
    if index.name not in available:
        raise IndexNotDeployed(index.name)


class DynamoGrantIndex(DynamoTable):
    """Query side of the grants table's ``by_user`` and ``by_client`` indexes (eventually consistent).

    ``available``: the index names this deployment has (``ManagementSettings.grant_indexes``);
    a read of another raises :class:`IndexNotDeployed` without calling DynamoDB.
    """

    def __init__(self, table: str, available: Collection[str] = GRANT_INDEX_NAMES, client: Any = None) -> None:
        super().__init__(table, client)
        self.available = frozenset(available)

    def require(self, index: IndexSpec) -> None:
        """Raise :class:`IndexNotDeployed` unless this deployment has ``index``: check before a side effect."""
        require_index(self.available, index)

    def grants_of_user(self, sub: str) -> list[Grant]:
        """Every ``GRANT#`` item of the Cognito user ``sub``, any status, as stored (expiry not applied).

        Raises ``DependencyError`` (503) when DynamoDB fails, ``IndexNotDeployed`` without ``by_user``.
        """
        return [GRANTS.from_item(item) for item in self._query(GRANTS_BY_USER, sub, "grant")]

    def grants_of_client(self, client_id: str) -> list[Grant]:
        """Every ``GRANT#`` item of the OAuth client ``client_id``, any status.

        Raises ``DependencyError``, and ``IndexNotDeployed`` without ``by_client``.
        """
        return [GRANTS.from_item(item) for item in self._query(GRANTS_BY_CLIENT, client_id, "grant")]

    def consents_of_user(self, sub: str) -> list[Consent]:
        """Every remembered consent of ``sub`` (``CONSENT#`` items).

        Raises ``DependencyError``, and ``IndexNotDeployed`` without ``by_user``.
        """
        return [CONSENTS.from_item(item) for item in self._query(GRANTS_BY_USER, sub, "consent")]

    def consents_of_client(self, client_id: str) -> list[Consent]:
        """Every remembered consent given to ``client_id``.

        Raises ``DependencyError``, and ``IndexNotDeployed`` without ``by_client``.
        """
        return [CONSENTS.from_item(item) for item in self._query(GRANTS_BY_CLIENT, client_id, "consent")]

    def _query(self, index: IndexSpec, key: str, kind: IndexedKind) -> Iterator[dict[str, Any]]:
        self.require(index)  # before the first page is asked for: the caller's listing fails closed
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p AND #k = :k",
            "ExpressionAttributeNames": {"#p": index.partition_key, "#k": "kind"},
            "ExpressionAttributeValues": {":p": {"S": key}, ":k": {"S": kind}},
        }
        while True:
            with dependency_call(f"query {index.name}"):
                page = self._ddb.query(**request)
            for item in page.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
