from __future__ import annotations

import io
import json
import logging

from aws_lambda_powertools import Logger

from functions.core.platform.errors import bearer_challenge
from functions.core.platform.observability import REDACTED, RedactingFormatter, redact
from tests.helpers import access_claims, make_key, mint


def test_challenge_without_token_has_no_error() -> None:
    header = bearer_challenge(resource_metadata="https://x/.well-known/oauth-protected-resource/mcp", scope=["a", "b"])
    assert header == 'Bearer scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp"'


def test_challenge_description_holds_only_the_characters_rfc_6750_allows() -> None:
    # RFC 6750 section 3: no quote, no backslash, nothing outside %x20-7E (a tool's name may be
    # anything); the header stays one quoted-string per parameter and encodable as Latin-1.
    header = bearer_challenge(
        resource_metadata="r", error="insufficient_scope", description='tool say"hi\\ 写 é requires more scopes'
    )
    assert 'error_description="tool say?hi? ? ? requires more scopes"' in header
    header.encode("ascii")
    # Other parameters are still quoted-strings with quotes and backslashes escaped (RFC 9110 section 5.6.4).
    assert bearer_challenge(resource_metadata='a"b\\c') == 'Bearer resource_metadata="a\\"b\\\\c"'


def test_redact_hides_tokens_and_secrets() -> None:
    jwt = mint(make_key("k"), access_claims())
    text = f"Authorization: Bearer {jwt} code=abc123secret&client_secret=s3cr3t refresh_token: opaque-rt-value"
    out = redact(text)
    assert jwt not in out
    assert "abc123secret" not in out
    assert "s3cr3t" not in out
    assert "opaque-rt-value" not in out
    assert out.count(REDACTED) >= 4


def test_logger_output_never_contains_a_token() -> None:
    stream = io.StringIO()
    log = Logger(
        service="t", level="INFO", logger_formatter=RedactingFormatter(), logger_handler=logging.StreamHandler(stream)
    )
    jwt = mint(make_key("k"), access_claims())
    log.info("received", extra={"authorization": f"Bearer {jwt}"})
    line = stream.getvalue()
    assert jwt not in line
    assert json.loads(line)["authorization"].endswith(REDACTED)
