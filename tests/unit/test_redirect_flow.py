"""/authorize and remembered consent with the real redirect URI comparison (``redirect_uri_registered``).

VS Code registers ``http://127.0.0.1:33418/``; a client may present ``http://127.0.0.1:33418``
(or register one spelling and present the other): one URI (RFC 3986 section 6.2.3).
"""

from __future__ import annotations

import pytest

from functions.core.clients.metadata import validate_client_metadata
from tests import facade_fakes
from tests.facade_fakes import Facade, FakeResolver, approve, public_client


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://127.0.0.1:33418/", "http://127.0.0.1:33418"),
        ("http://127.0.0.1:33418", "http://127.0.0.1:33418/"),
        ("http://127.0.0.1:33418", "http://127.0.0.1:50000"),
    ],
)
def test_authorize_accepts_either_spelling_of_an_empty_path(registered: str, presented: str) -> None:
    meta = validate_client_metadata({"redirect_uris": [registered], "token_endpoint_auth_method": "none"})
    facade = Facade(resolver=FakeResolver(public_client(client_id="vscode", redirect_uris=meta.redirect_uris)))
    query = approve(facade, client_id="vscode", redirect_uri=presented)
    assert "code" in query and query["state"] == "client-state"


def test_a_different_path_is_still_refused() -> None:
    facade = Facade(
        resolver=FakeResolver(public_client(client_id="vscode", redirect_uris=("http://127.0.0.1:33418/",)))
    )
    answer = facade.authorization().authorize(
        facade_fakes.authorize_params(client_id="vscode", redirect_uri="http://127.0.0.1:33418/other")
    )
    assert answer.status == 400
