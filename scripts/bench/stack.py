"""The moto server ``make bench`` runs against: seeded pool and tables, a token, the events."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BenchStack:
    """What the child programs need: the function environment, a token with a grant, events."""

    env: dict[str, str]
    token: str
    list_event: dict[str, Any]
    whoami_event: dict[str, Any]
    peer: dict[str, str]  # issuer, client_id, jwks_uri for FastMCP's Cognito token verifier


@contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """A moto server on a loopback port, seeded as ``make dev`` seeds it; stopped on exit."""
    from moto.server import ThreadedMotoServer

    from functions.core.cognito.jwks import INITIALIZATION_TYPE
    from functions.core.platform.settings import Env
    from functions.core.state.grants import DynamoGrantRepository
    from local.config import FAKE_CREDENTIALS, GRANTS_TABLE, REGION, LocalConfig
    from local.seed import seed
    from local.stack import function_environment
    from tests.helpers import grant, http_api_event, rpc
    from tests.integration.test_mcp_handler import moto_token

    os.environ.update(FAKE_CREDENTIALS, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        cfg = LocalConfig(moto_port=port)
        seeded = seed(cfg, "Bench-Passw0rd!")
        env = {
            **function_environment(cfg, seeded),
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # What Lambda sets for a cold start without SnapStart or provisioned concurrency
            # (the MCP handler then fetches the JWKS during its init).
            INITIALIZATION_TYPE: "on-demand",
        }

        class _Stack:
            pass

        stack: Any = _Stack()
        stack.cfg, stack.seeded = cfg, seeded
        DynamoGrantRepository(GRANTS_TABLE).create(grant("origin-bench", "sub-bench", ("notes:read", "notes:write")))
        token = moto_token(stack, "bench", ("notes:read", "notes:write"))
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "authorization": f"Bearer {token}",
        }
        yield BenchStack(
            env=env,
            token=token,
            list_event=http_api_event("POST", "/mcp", headers=headers, body=rpc("tools/list")),
            whoami_event=http_api_event(
                "POST", "/mcp", headers=headers, body=rpc("tools/call", {"name": "whoami", "arguments": {}})
            ),
            peer={
                "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{seeded.user_pool_id}",
                "client_id": seeded.gateway_client_id,
                "jwks_uri": env[Env.JWKS_URL],
            },
        )
    finally:
        server.stop()
