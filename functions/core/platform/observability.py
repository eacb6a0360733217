"""One observability module for every function: Powertools Logger and Metrics.

The logger's formatter redacts anything shaped like a bearer token, JWT or long opaque
secret before it is written (no token, secret or code is ever logged). Handlers
also avoid logging such values in the first place; redaction is the safety net.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

NAMESPACE: Final = "McpCognitoKit"

_REDACTIONS: Final = (
    # Compact JWS/JWT: three base64url segments, the first starting with '{"' encoded.
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    # Authorization header values.
    re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # Named secrets in query strings, forms or JSON.
    re.compile(
        r"(?i)(\"?(?:access_token|refresh_token|id_token|code|code_verifier|client_secret|password|"
        r"registration_access_token)\"?\s*[=:]\s*\"?)[^\s&\",}]+"
    ),
)
REDACTED: Final = "[REDACTED]"


def redact(text: str) -> str:
    """``text`` with every JWT, bearer/basic credential and named secret value replaced by ``[REDACTED]``."""
    for pattern in _REDACTIONS:
        # Patterns with a group keep their prefix (the parameter name) and hide the value.
        text = pattern.sub((r"\1" + REDACTED) if pattern.groups else REDACTED, text)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log formatter with :func:`redact` applied to each serialized record."""

    def serialize(self, log: Any) -> str:
        """The record as Powertools serializes it (one JSON line), then redacted."""
        return redact(super().serialize(log))


logger: Final = Logger(logger_formatter=RedactingFormatter(), utc=True)
metrics: Final = Metrics(namespace=NAMESPACE)
