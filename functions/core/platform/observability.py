"""One observability module for every function: Powertools Logger, Metrics and (when on) Tracer.

The logger's formatter redacts anything shaped like a bearer token, JWT or long opaque
secret before it is written (no token, secret or code is ever logged). Handlers
also avoid logging such values in the first place; redaction is the safety net. It also
leaves out the Lambda context fields that are the same on every line of a function's log
group (:data:`CONSTANT_KEYS`: its name, ARN and memory size, which the group, its streams
and ``service`` already say); the request's ids (``function_request_id``, API Gateway's
``correlation_id``, ``xray_trace_id``) and ``cold_start`` stay on each line.

Tracing: with Lambda active tracing on (the runtime then sets ``AWS_XRAY_DAEMON_ADDRESS``)
:func:`start_tracing` patches botocore and ``http.client`` through Powertools Tracer, so
every DynamoDB and KMS call and every HTTPS call to Cognito (token, revoke, JWKS) is an X-Ray
subsegment (every Lambda asset ships aws-xray-sdk, pruned to the patchers of
:data:`TRACED_MODULES`: ``infra/pruning.py``). Without tracing (``make dev``, tests) neither
Tracer nor aws-xray-sdk is imported: they stay off the cold path.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
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
# Powertools' inject_lambda_context fields that never change within a function's log group
# (one group per function; the stream names the version): ~230 bytes of every line.
CONSTANT_KEYS: Final = frozenset({"function_name", "function_arn", "function_memory_size"})


def redact(text: str) -> str:
    """``text`` with every JWT, bearer/basic credential and named secret value replaced by ``[REDACTED]``."""
    for pattern in _REDACTIONS:
        # Patterns with a group keep their prefix (the parameter name) and hide the value.
        text = pattern.sub((r"\1" + REDACTED) if pattern.groups else REDACTED, text)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log formatter without :data:`CONSTANT_KEYS`, with :func:`redact` applied to each line."""

    def serialize(self, log: Any) -> str:
        """The record (a dict) without :data:`CONSTANT_KEYS`, as one JSON line (Powertools), redacted."""
        kept = {key: value for key, value in log.items() if key not in CONSTANT_KEYS}
        return redact(super().serialize(kept))


logger: Final = Logger(logger_formatter=RedactingFormatter(), utc=True)
metrics: Final = Metrics(namespace=NAMESPACE)


# What Powertools Tracer patches: botocore (DynamoDB, KMS, Cognito admin APIs) and
# http.client (urllib: Cognito's /oauth2/token and /oauth2/revoke, the JWKS, CIMD fetches).
TRACED_MODULES: Final = ("botocore", "httplib")


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether X-Ray tracing is on: an X-Ray daemon address and no ``POWERTOOLS_TRACE_DISABLED``."""
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true")
    return bool(env.get("AWS_XRAY_DAEMON_ADDRESS")) and not disabled


def start_tracing(env: Mapping[str, str] = os.environ) -> bool:
    """Patch :data:`TRACED_MODULES` with X-Ray subsegments when tracing is on; True if it did.

    Imports Powertools Tracer (and aws-xray-sdk) only then. Idempotent (aws-xray-sdk patches
    a module once). Without aws-xray-sdk in the asset it warns and traces nothing more than
    Lambda's own segments: tracing is diagnostics, never a reason to fail a cold start.
    """
    if not tracing_enabled(env):
        return False
    if importlib.util.find_spec("aws_xray_sdk") is None:
        logger.warning("tracing is on but aws-xray-sdk is not installed: no DynamoDB/KMS/Cognito subsegments")
        return False
    from aws_lambda_powertools import Tracer

    Tracer(patch_modules=TRACED_MODULES)
    return True


start_tracing()
