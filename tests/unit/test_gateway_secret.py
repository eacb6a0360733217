"""The gateway client's secret: read once per container, dropped on rotation, fail closed;
the keys derived from it are bound to their purpose and stable."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.core.cognito.gateway_secret import GatewaySecret, StaticSecret, cookie_key, gateway_pkce_verifier
from functions.core.platform.crypto import PKCE_VERIFIER
from functions.core.platform.errors import DependencyError


class FakeIdp:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, 0

    def describe_user_pool_client(self, **kw: Any) -> Any:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_gateway_secret_is_cached_until_invalidated() -> None:
    idp = FakeIdp({"UserPoolClient": {"ClientSecret": "abc"}})
    secret = GatewaySecret("pool", "gw", idp)
    assert secret.get() == secret.get() == "abc" and idp.calls == 1
    secret.invalidate()
    assert secret.get() == "abc" and idp.calls == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"UserPoolClient": {}},  # a public gateway client: refuse to run
        ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeUserPoolClient"),
    ],
)
def test_gateway_secret_failures(answer: Any) -> None:
    with pytest.raises(DependencyError):
        GatewaySecret("pool", "gw", FakeIdp(answer)).get()


def test_derived_keys_are_purpose_bound_and_stable() -> None:
    secret = StaticSecret("root")
    verifier = gateway_pkce_verifier(secret, "txn-1")
    assert PKCE_VERIFIER.match(verifier) and len(verifier) == 43
    assert verifier == gateway_pkce_verifier(secret, "txn-1") != gateway_pkce_verifier(secret, "txn-2")
    assert cookie_key(secret) != cookie_key(StaticSecret("other"))
