"""``make dev``: the whole kit on localhost, offline, in one foreground process.

Starts a moto server (Cognito admin APIs, DynamoDB, KMS), seeds it, starts the Cognito
managed-login emulator on its own port (the "Cognito domain"), and serves every kit
function on ``http://localhost:$PORT`` through a local API Gateway stand-in that invokes
the real Lambda handlers. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

from functions.core.platform import kit_app, topology
from functions.core.platform.routes import FUNCTIONS, MCP_PATH, ROUTES, FunctionName
from functions.core.platform.settings import OPERATOR_ENV, Env
from local.config import FAKE_CREDENTIALS, REGION, LocalConfig, demo_users, scope_group_ceilings, table_name
from local.gateway import LambdaGateway, LambdaHandler, load_handler
from local.seed import Seeded, seed
from local.state_file import remove_state, write_state

READY_LINE = "mcp-cognito-kit local stack ready"
# The MCP Inspector's UI: it prints http://127.0.0.1:6274 and is as often opened as localhost.
INSPECTOR_ORIGINS = ("http://localhost:6274", "http://127.0.0.1:6274")


def function_environment(cfg: LocalConfig, seeded: Seeded) -> dict[str, str]:
    """Every variable the local stack can supply, with local values (the CDK stack's ``available``).

    Each function receives only its share (:func:`function_environments`), as in AWS.
    """
    return {
        Env.BASE_URL: cfg.base_url,
        Env.USER_POOL_ID: seeded.user_pool_id,
        Env.REGION: REGION,
        Env.GATEWAY_CLIENT_ID: seeded.gateway_client_id,
        # moto serves the pool's JWKS on its own URL, while tokens carry the AWS-form issuer.
        Env.JWKS_URL: f"{cfg.moto_url}/{seeded.user_pool_id}/.well-known/jwks.json",
        Env.RESOURCE_BINDING: "true",
        **topology.table_environment(kit_app.current(), table_name),
        Env.GRANT_CACHE_SECONDS: os.environ.get(Env.GRANT_CACHE_SECONDS, "10"),
        # Browser-based clients allowed on /mcp locally: MCP Inspector's UI by default.
        Env.ALLOWED_ORIGINS: os.environ.get(Env.ALLOWED_ORIGINS, ",".join(INSPECTOR_ORIGINS)),
        Env.COGNITO_DOMAIN_URL: cfg.cognito_url,
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


def function_environments(available: Mapping[str, str]) -> dict[FunctionName, dict[str, str]]:
    """Each function's own environment: the kit variables its settings model reads, as in AWS.

    Built by the topology the CDK stack uses (``local=True`` keeps the local-only overrides);
    variables that are not the kit's (Powertools) reach every function. A required variable
    missing from ``available`` raises ``topology.TopologyError``, as synth does.
    """
    kit = topology.kit_variables()
    shared = {name: value for name, value in available.items() if name not in kit}
    return {name: {**shared, **topology.function_environment(name, available, local=True)} for name in FUNCTIONS}


@contextlib.contextmanager
def function_container(environment: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` as the function's own container sees it, for its cold start (imports).

    Every kit variable (``settings.Env``) not in ``environment`` is removed, so a function
    cannot read a variable AWS would not give it; the rest of the process environment (moto
    endpoint, credentials, ``KIT_APP_PATH``) stays. Restored on exit. Not thread-safe: for
    start-up, before any server thread runs.
    """
    saved = dict(os.environ)
    for name in topology.kit_variables():
        os.environ.pop(name, None)
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_handlers(environments: Mapping[FunctionName, Mapping[str, str]]) -> dict[FunctionName, LambdaHandler]:
    """Each function's Lambda handler, imported (cold-started) inside its own environment."""
    handlers: dict[FunctionName, LambdaHandler] = {}
    for name, environment in environments.items():
        with function_container(environment):
            handlers[name] = load_handler(name)
    return handlers


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
        environments = function_environments(environment)
        # API Gateway invokes the routed functions; EventBridge the others (not run locally).
        routed = {route.function for route in ROUTES}
        handlers = load_handlers({name: env for name, env in environments.items() if name in routed})
        # Deprovisioning: the AWS backstop's reconciliation, on a timer (no CloudTrail locally),
        # with the deprovisioning function's own settings. Imported only now: the functions'
        # logger must be created with their environment's level.
        from local.poller import DeprovisioningPoller, poll_seconds

        with function_container(environments[topology.DEPROVISIONING.function]):
            poller = DeprovisioningPoller(topology.DEPROVISIONING.load(), poll_seconds())
        poller.start()

        from local.cognito_emulator import create_app as create_emulator

        emulator = create_emulator(
            moto_url=cfg.moto_url, region=REGION, user_pool_id=seeded.user_pool_id, public_url=cfg.cognito_url
        )
        gateway = LambdaGateway(handlers, timeout_seconds=cfg.gateway_timeout_seconds)
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
