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


def test_challenge_quotes_are_escaped() -> None:
    header = bearer_challenge(resource_metadata="r", error="invalid_token", description='bad "token"')
    assert 'error_description="bad \\"token\\""' in header


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
