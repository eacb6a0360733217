"""``make dev``: the whole kit on localhost, offline, in one foreground process.

Starts a moto server (Cognito admin APIs, DynamoDB, KMS), seeds it, starts the Cognito
managed-login emulator on its own port (the "Cognito domain"), and serves every kit
function on ``http://localhost:$PORT`` through a local API Gateway stand-in that invokes
the real Lambda handlers. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Final

from functions.core.platform import kit_app
from functions.core.platform.routes import FUNCTIONS, MCP_PATH, routes_for
from functions.core.platform.settings import OPERATOR_ENV, Env, ManagementSettings
from local.config import (
    ARTEFACTS_TABLE,
    CLIENTS_TABLE,
    FAKE_CREDENTIALS,
    GRANTS_TABLE,
    REGION,
    LocalConfig,
    app_table_name,
    demo_users,
    scope_group_ceilings,
)
from local.seed import Seeded, seed
from local.state_file import remove_state, write_state

READY_LINE = "mcp-cognito-kit local stack ready"
INSPECTOR_ORIGIN = "http://localhost:6274"


def function_environment(cfg: LocalConfig, seeded: Seeded) -> dict[str, str]:
    """The environment the CDK stack gives the functions, with local values."""
    return {
        Env.BASE_URL: cfg.base_url,
        Env.USER_POOL_ID: seeded.user_pool_id,
        Env.REGION: REGION,
        Env.GATEWAY_CLIENT_ID: seeded.gateway_client_id,
        # moto serves the pool's JWKS on its own URL, while tokens carry the AWS-form issuer.
        Env.JWKS_URL: f"{cfg.moto_url}/{seeded.user_pool_id}/.well-known/jwks.json",
        Env.RESOURCE_BINDING: "true",
        Env.GRANTS_TABLE: GRANTS_TABLE,
        Env.APP_TABLES: json.dumps({t.name: app_table_name(t.name) for t in kit_app.current().tables}),
        Env.GRANT_CACHE_SECONDS: os.environ.get(Env.GRANT_CACHE_SECONDS, "10"),
        # Browser-based clients allowed on /mcp locally: MCP Inspector's UI by default.
        Env.ALLOWED_ORIGINS: os.environ.get(Env.ALLOWED_ORIGINS, INSPECTOR_ORIGIN),
        Env.COGNITO_DOMAIN_URL: cfg.cognito_url,
        Env.CLIENTS_TABLE: CLIENTS_TABLE,
        Env.ARTEFACTS_TABLE: ARTEFACTS_TABLE,
        Env.KMS_KEY_ID: seeded.kms_key_id,
        Env.SCOPE_GROUP_CEILINGS: json.dumps(scope_group_ceilings()),
        # Off unless asked for: lets tests serve Client ID Metadata Documents from loopback.
        Env.INSECURE_CIMD_LOOPBACK: os.environ.get(Env.INSECURE_CIMD_LOOPBACK, "false"),
        **({Env.CIMD_CA_FILE: os.environ[Env.CIMD_CA_FILE]} if os.environ.get(Env.CIMD_CA_FILE) else {}),
        # Operator settings (the stack's kit:* keys), e.g. REGISTRATION_POLICY=closed make dev.
        **{name: os.environ[name] for name in OPERATOR_ENV if name in os.environ},
        "POWERTOOLS_SERVICE_NAME": "mcp-cognito-kit",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }


# Ctrl-C must stop the stack within seconds even with requests in flight: after this long
# uvicorn cancels the requests it is still serving.
GRACEFUL_SHUTDOWN_SECONDS: Final = 1
STOP_DEADLINE_SECONDS: Final = 3.0


def _serve(app: Any, port: int, name: str) -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    return server, thread


# Ctrl-C and SIGTERM are blocked in every thread and taken synchronously by the main thread
# with sigwait. A Python-level handler is not enough here: the kernel may deliver the signal
# to any of the server threads, and then a main thread blocked in a wait never runs it.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _wait_started(servers: list[Any], thread_list: list[threading.Thread]) -> bool:
    while not all(s.started for s in servers):
        if any(not t.is_alive() for t in thread_list):
            return False
        if signal.sigtimedwait(_STOP_SIGNALS, 0.05) is not None:
            return False  # stopped during start-up
    return True


def main() -> int:
    cfg = LocalConfig.from_env()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_ENDPOINT_URL=cfg.moto_url)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.server import ThreadedMotoServer

    # Before any thread exists, so that every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=cfg.moto_port, verbose=False)
    moto.start()
    servers: list[Any] = []
    threads: list[threading.Thread] = []
    gateway = None
    poller = None
    try:
        seeded = seed(cfg, os.environ.get("DEMO_PASSWORD") or None)
        environment = function_environment(cfg, seeded)
        os.environ.update(environment)
        # Deprovisioning: the AWS backstop's reconciliation, on a timer (no CloudTrail locally).
        # Imported only now: the functions' logger must be created with their environment's level.
        from local.poller import DeprovisioningPoller, poll_seconds

        poller = DeprovisioningPoller(ManagementSettings.from_env(), poll_seconds())
        poller.start()

        from local.cognito_emulator import create_app as create_emulator
        from local.gateway import LambdaGateway, load_handler

        emulator = create_emulator(
            moto_url=cfg.moto_url, region=REGION, user_pool_id=seeded.user_pool_id, public_url=cfg.cognito_url
        )
        gateway = LambdaGateway(
            {name: load_handler(name) for name in FUNCTIONS if routes_for(name)},
            timeout_seconds=cfg.gateway_timeout_seconds,
        )
        for app, port, name in ((emulator, cfg.cognito_port, "cognito"), (gateway, cfg.port, "gateway")):
            server, thread = _serve(app, port, name)
            servers.append(server)
            threads.append(thread)
        if not _wait_started(servers, threads):
            print("local stack failed to start (is a port in use?)", file=sys.stderr)
            return 1
        write_state(
            {**environment, kit_app.APP_PATH_ENV: str(kit_app.current().root)}, cfg.moto_url
        )  # mcp-kit-admin --local
        _banner(cfg, seeded)
        signal.sigwait(_STOP_SIGNALS)
        return 0
    finally:
        # Invocations in flight are cancelled (their callers get 503), then the servers stop
        # within one deadline; a handler stuck in blocking code is on a daemon thread and
        # cannot hold the process.
        remove_state()
        if poller is not None:
            poller.stop()
        if gateway is not None:
            gateway.close()
        for server in servers:
            server.should_exit = True
        deadline = time.monotonic() + STOP_DEADLINE_SECONDS
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        moto.stop()
        print("local stack stopped", flush=True)


def _banner(cfg: LocalConfig, seeded: Seeded) -> None:
    lines = [
        READY_LINE,
        f"  MCP URL:        {cfg.base_url}{MCP_PATH}",
        f"  Issuer:         {cfg.base_url}",
        f"  Cognito domain: {cfg.cognito_url}  (managed-login emulator)",
        f"  moto:           {cfg.moto_url}",
        f"  User pool:      {seeded.user_pool_id}",
        f"  App:            {kit_app.current().root}  (scopes {' '.join(kit_app.current().scope_names)})",
        "  Demo users:",
    ]
    for user in demo_users():
        groups = ",".join(user.groups) or "no group"
        lines.append(f"    {user.email:<20} password {seeded.passwords[user.email]}  ({groups})")
    lines.append("  Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
