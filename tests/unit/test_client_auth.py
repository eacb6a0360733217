"""functions/core/oauth/client_auth.py, and the metadata document that advertises it.

RFC 8414 section 2: the document lists the client authentication methods and grant types
the token endpoint accepts; the kit derives both lists from what the endpoints enforce.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from functions.core.oauth import client_auth
from functions.core.oauth.grant_types import GRANT_TYPES
from functions.core.platform.errors import TokenError
from functions.core.platform.settings import Env, MetadataSettings
from functions.metadata.documents import authorization_server_metadata
from tests.facade_fakes import FakeResolver, confidential_client, public_client
from tests.helpers import BASE_URL

SECRET = "s3cret"


def _document() -> dict[str, Any]:
    return authorization_server_metadata(MetadataSettings.from_env({Env.BASE_URL: BASE_URL}))


def _request(method: str, client_id: str) -> tuple[str, dict[str, str]]:
    """The Authorization header and form of a request authenticating with ``method``."""
    if method == "client_secret_basic":
        return "Basic " + base64.b64encode(f"{client_id}:{SECRET}".encode()).decode(), {}
    if method == "client_secret_post":
        return "", {"client_id": client_id, "client_secret": SECRET}
    return "", {"client_id": client_id}


@pytest.mark.parametrize("endpoint", ["token_endpoint", "revocation_endpoint"])
def test_every_advertised_method_authenticates_and_no_other_exists(endpoint: str) -> None:
    advertised = _document()[f"{endpoint}_auth_methods_supported"]
    assert tuple(advertised) == client_auth.AUTH_METHODS
    for method in advertised:
        client = public_client() if method == "none" else confidential_client(method, SECRET)
        authorization, form = _request(method, client.client_id)
        assert client_auth.authenticate_client(FakeResolver(client), authorization, form) is client


def test_a_method_other_than_the_registered_one_is_invalid_client() -> None:
    client = confidential_client("client_secret_basic", SECRET)
    authorization, form = _request("client_secret_post", client.client_id)
    with pytest.raises(TokenError) as info:
        client_auth.authenticate_client(FakeResolver(client), authorization, form)
    assert (info.value.error, info.value.status) == ("invalid_client", 401)
    assert info.value.headers == {"WWW-Authenticate": 'Basic realm="token"'}


@pytest.mark.parametrize(
    ("authorization", "form"),
    [
        ("Basic " + base64.b64encode(b"public-agent:").decode(), {}),  # Go's x/oauth2 first try
        ("", {"client_id": "public-agent", "client_secret": ""}),
    ],
)
def test_an_empty_secret_from_a_public_client_is_no_secret(authorization: str, form: dict[str, str]) -> None:
    # RFC 6749 section 2.3.1: a client may omit an empty secret; presenting one proves nothing more.
    client = public_client(client_id="public-agent")
    assert client_auth.authenticate_client(FakeResolver(client), authorization, form) is client
    confidential = confidential_client("client_secret_basic", SECRET)
    empty = "Basic " + base64.b64encode(f"{confidential.client_id}:".encode()).decode()
    with pytest.raises(TokenError) as info:
        client_auth.authenticate_client(FakeResolver(confidential), empty, {})
    assert info.value.error == "invalid_client"


def test_two_methods_at_once_are_invalid_request() -> None:
    client = confidential_client("client_secret_basic", SECRET)
    authorization, _ = _request("client_secret_basic", client.client_id)
    with pytest.raises(TokenError) as info:
        client_auth.authenticate_client(FakeResolver(client), authorization, {"client_secret": SECRET})
    assert (info.value.error, info.value.status) == ("invalid_request", 400)


def test_advertised_grant_types_are_the_served_ones() -> None:
    assert tuple(_document()["grant_types_supported"]) == GRANT_TYPES
