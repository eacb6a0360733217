"""What each Lambda asset leaves out: installed dependencies no function imports on Lambda.

``infra.packaging`` removes these paths (relative to the install root) after pip installs a
function's requirements. The import test of every built asset (tests/infra) proves that
nothing a function imports at run time is missing, and the size budgets in
``infra.packaging`` hold because of them.
"""

from __future__ import annotations

from typing import Final

# Installed as dependencies but never imported by any function on Lambda: the MCP SDK's CLI
# and dev server, pydantic's v1 shim, Powertools utilities the kit does not use. Paths
# relative to the install root; the import test of every built asset (tests/infra) proves
# that nothing a function imports is missing.
_POWERTOOLS_UNUSED: Final = tuple(
    f"aws_lambda_powertools/utilities/{name}"
    for name in (
        "auth_alpha",
        "batch",
        "circuit_breaker",
        "data_classes",
        "data_masking",
        "feature_flags",
        "idempotency",
        "kafka",
        "metadata",
        "parameters",
        "parser",
        "streaming",
        "validation",
    )
)
# aws-xray-sdk (Powertools Tracer's provider, imported only with tracing on): its patchers for
# libraries no function uses. Tracer patches botocore and http.client ("httplib"), which need
# ext/__init__, ext/util, ext/boto_utils and ext/resources (observability.TRACED_MODULES).
_XRAY_UNUSED: Final = (
    *(
        f"aws_xray_sdk/ext/{name}"
        for name in (
            "aiobotocore",
            "aiohttp",
            "bottle",
            "dbapi2.py",
            "django",
            "flask",
            "flask_sqlalchemy",
            "httpx",
            "mysql",
            "pg8000",
            "psycopg",
            "psycopg2",
            "pymongo",
            "pymysql",
            "pynamodb",
            "requests",
            "sqlalchemy",
            "sqlalchemy_core",
            "sqlite3",
        )
    ),
    "wrapt/_wrappers.c",  # the C source of the extension module beside it
    "wrapt-stubs",  # type stubs
    # aws-xray-sdk requires botocore, which the Lambda runtime provides (packaging.RUNTIME_PROVIDED)
    # together with these dependencies of its own; no other requirement of the kit needs them (an
    # app whose own requirements need them gets the runtime's copies: README, Tracing).
    "urllib3",
    "dateutil",
)
PRUNED: Final = ("uvicorn", "click", "pydantic/v1", *_POWERTOOLS_UNUSED, *_XRAY_UNUSED)
# Functions that route with their own code, not Powertools' event handler.
_NO_EVENT_HANDLER: Final = ("aws_lambda_powertools/event_handler",)
# python-jose verifies RS256 with ``cryptography`` when it is installed, else with its
# pure-Python ``rsa`` backend (~0.4 ms a verify: public-exponent operations are cheap).
# authorization and token verify one Cognito token per callback or refresh, next to an HTTP
# call to Cognito, so they ship without cryptography (14 MB).
_NO_CRYPTOGRAPHY: Final = ("cryptography", "cffi", "_cffi_backend", "pycparser")
# Per function, on top of PRUNED. The MCP function keeps cryptography for its per-request
# check and drops python-jose's pure-Python backends and the MCP SDK's client-side stack
# (JSON Schema validation of results, PyJWT, the HTTP client's transport and TLS store).
PRUNED_BY_FUNCTION: Final[dict[str, tuple[str, ...]]] = {
    "mcp_server": (
        *_NO_EVENT_HANDLER,
        "anyio/_backends/_trio.py",
        "mcp/cli",
        "ecdsa",
        "rsa",
        "pyasn1",
        "pycparser",
        # cffi's Python package (its build-time compiler and parser): cryptography's Rust bindings
        # load only the extension module _cffi_backend, which stays.
        "cffi",
        "jwt",
        "jsonschema",
        "jsonschema_specifications",
        "referencing",
        "rpds",
        "attr",
        "attrs",
        "h11",
        "httpcore2",
        "truststore",
    ),
    "authorization": (*_NO_EVENT_HANDLER, *_NO_CRYPTOGRAPHY),
    "token": (*_NO_EVENT_HANDLER, *_NO_CRYPTOGRAPHY),
    # Verifies no token at all: EventBridge events in, DynamoDB/KMS/Cognito calls out.
    "deprovisioning": (*_NO_EVENT_HANDLER, *_NO_CRYPTOGRAPHY),
}
