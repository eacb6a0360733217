"""RFC 8707 ``resource`` values compared after RFC 3986 section 6.2.2-6.2.3 normalisation."""

from __future__ import annotations

import pytest

from functions.core.oauth.resource_uri import normalise, same_resource

SERVED = "http://localhost:8000/mcp"


@pytest.mark.parametrize(
    "spelling",
    [
        "http://localhost:8000/mcp",
        "http://localhost:8000/mcp/",  # one trailing slash on the MCP path
        "HTTP://LOCALHOST:8000/mcp",  # scheme and host case
        "http://localhost:8000/%6dcp",  # percent-encoded unreserved characters
        "http://localhost:8000/./mcp",  # dot segments
        "http://localhost:8000/a/../mcp",
    ],
)
def test_equivalent_spellings_name_the_served_resource(spelling: str) -> None:
    assert same_resource(spelling, SERVED)


@pytest.mark.parametrize(
    "other",
    [
        "http://localhost:8001/mcp",
        "https://localhost:8000/mcp",
        "http://localhost:8000/MCP",  # the path is case-sensitive
        "http://localhost:8000/mcp//",  # only one trailing slash is forgiven
        "http://localhost:8000/mcp?x=1",
        "http://localhost:8000/mcp#f",
        "http://user@localhost:8000/mcp",
        "http://localhost:99999/mcp",
        "http://localhost:8000/m%zzcp",
        "mcp",
        "",
    ],
)
def test_other_resources_differ(other: str) -> None:
    assert not same_resource(other, SERVED)


def test_default_ports_and_empty_path() -> None:
    assert normalise("https://Example.COM:443") == "https://example.com/"
    assert normalise("http://example.com:80/a/") == "http://example.com/a"
    assert normalise("https://[::1]:8443/mcp") == "https://[::1]:8443/mcp"
    assert normalise("https://example.com/%7e%2f") == "https://example.com/~%2F"


@pytest.mark.parametrize(
    "spelling",
    [
        "http://localhost:8000/m\tcp",  # urlsplit strips tab, CR and LF anywhere
        "http://localhost:8000/mcp\n",
        "http://local\r\nhost:8000/mcp",
        "http://localhost:8000/mcp\x00",
        " http://localhost:8000/mcp",  # urlsplit strips leading controls and spaces
        "\x01http://localhost:8000/mcp",
        "http://localhost:8000/m cp",
        "http://localhost:8000/mcp\x7f",
        "http://localhost:8000/mc\u00fe",
        'http://localhost:8000/mcp"',
        "http://localhost:8000/mcp<x>",
    ],
    ids=repr,
)
def test_characters_outside_rfc3986_are_refused(spelling: str) -> None:
    # RFC 3986 section 2: not a URI at all, so not the served resource however it parses.
    assert normalise(spelling) is None
    assert not same_resource(spelling, SERVED)
