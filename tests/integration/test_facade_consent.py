"""Remembered consent through the real handlers and DynamoDB: skipped only for a proven client,
bound to the redirect URIs the person approved."""

from __future__ import annotations

from tests.facade_fakes import (
    CONF_REDIRECT,
)
from tests.integration.facade_flow import (
    CONF_OTHER_REDIRECT,
    Facade,
    code_for,
    consent,
    consent_item,
    sign_in,
    sign_in_confidential,
)


def test_remembered_consent_skips_the_page_only_for_a_proven_client(facade: Facade) -> None:
    # RFC 8252 section 8.6: a loopback public client cannot prove who it is, so even with a
    # remembered consent it sees the page every time.
    code_for(facade, "alice@example.com", scope="notes:read")
    _, answer = sign_in(facade, "alice@example.com", scope="notes:read")
    assert answer["statusCode"] == 200 and "csrf" in answer["body"]
    # A confidential client's https redirect proves the client: the page is skipped. (A client
    # of this test's own: the moto stack is shared, and another module consents to conf-agent.)
    cookie, page = sign_in_confidential(facade, "alice@example.com", client_id="conf-remembered")
    assert page["statusCode"] == 200
    consent(facade, cookie, page, redirect_uri=CONF_REDIRECT)
    _, again = sign_in_confidential(facade, "alice@example.com", client_id="conf-remembered")
    assert again["statusCode"] == 302 and again["headers"]["Location"].startswith(CONF_REDIRECT + "?code=")


def test_consent_is_bound_to_the_redirect_uri(facade: Facade) -> None:
    """RFC 9700 section 4.1: consent remembered for one redirect URI does not send a code to
    another one silently; approving the other adds it (stored in DynamoDB)."""
    cookie, page = sign_in_confidential(facade, "bob@example.com", client_id="conf-two")
    consent(facade, cookie, page, redirect_uri=CONF_REDIRECT)
    assert consent_item("conf-two")["redirect_uris"] == [CONF_REDIRECT]
    cookie, page = sign_in_confidential(facade, "bob@example.com", CONF_OTHER_REDIRECT, "conf-two")
    assert page["statusCode"] == 200 and "Location" not in page["headers"]  # same scopes, new destination
    consent(facade, cookie, page, redirect_uri=CONF_OTHER_REDIRECT)
    assert consent_item("conf-two")["redirect_uris"] == [CONF_REDIRECT, CONF_OTHER_REDIRECT]
    _, again = sign_in_confidential(facade, "bob@example.com", CONF_OTHER_REDIRECT, "conf-two")
    assert again["statusCode"] == 302 and again["headers"]["Location"].startswith(CONF_OTHER_REDIRECT + "?code=")
