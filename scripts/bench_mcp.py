"""Benchmark of the MCP function: cold start and warm per-request latency.

Cold start: a fresh Python process per sample imports the Lambda handler module (the init
phase) and serves one authenticated ``tools/list`` through the handler (first invoke,
including the JWKS fetch). Warm: one process, many invocations through the same handler:
unauthenticated (the 401 path), authenticated with the grant cached, and authenticated with
the grant read from DynamoDB (moto) on every call.

Everything runs against a moto server this script starts on a free loopback port. Figures
are wall-clock on this machine; moto's DynamoDB is slower than the real one, so the
"uncached grant" row overstates AWS latency.

    python scripts/bench_mcp.py [--cold 5] [--warm 300]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The kit's test app (its scopes are the ones the tokens below carry); the children inherit it.
os.environ["KIT_APP_PATH"] = str(ROOT / "tests" / "fixtures" / "app")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import functions.mcp_server.handler as h
t1 = time.perf_counter()
from tests.helpers import FakeContext, http_api_event
body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
event = http_api_event("POST", "/mcp", headers=json.loads(sys.argv[1]), body=body)
t2 = time.perf_counter()
result = h.handler(event, FakeContext())
t3 = time.perf_counter()
assert result["statusCode"] == 200, result
print(json.dumps({"init_ms": (t1 - t0) * 1e3, "first_invoke_ms": (t3 - t2) * 1e3}))
"""


INIT_CHILD = r"""
import importlib, json, sys, time
t0 = time.perf_counter()
importlib.import_module(sys.argv[1])
print(json.dumps({"init_ms": (time.perf_counter() - t0) * 1e3}))
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {statistics.median(values):.2f} | {pct(values, 95):.2f} | {len(values)} |"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=5, help="cold-start samples (fresh processes)")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations per case")
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    from local.config import FAKE_CREDENTIALS, GRANTS_TABLE, REGION, LocalConfig
    from local.seed import seed
    from local.stack import function_environment

    os.environ.update(FAKE_CREDENTIALS, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        cfg = LocalConfig(moto_port=port)
        seeded = seed(cfg, "Bench-Passw0rd!")
        os.environ.update(function_environment(cfg, seeded))

        from functions.core.grants import DynamoGrantRepository
        from tests.helpers import FakeContext, grant, http_api_event
        from tests.integration.test_mcp_handler import moto_token

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

        cold: list[dict[str, float]] = []
        for _ in range(args.cold):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(headers)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
            sample = json.loads(out.stdout.strip().splitlines()[-1])
            sample["process_ms"] = (time.perf_counter() - t0) * 1e3
            cold.append(sample)

        from functions.core.routes import FUNCTIONS

        inits: dict[str, list[float]] = {}
        for name, spec in FUNCTIONS.items():
            module = spec.handler.rpartition(".")[0]
            for _ in range(args.cold):
                out = subprocess.run(
                    [sys.executable, "-c", INIT_CHILD, module],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                )
                inits.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1])["init_ms"])

        def warm(case_headers: dict[str, str], expect: int, cache_seconds: str) -> list[float]:
            os.environ["GRANT_CACHE_SECONDS"] = cache_seconds
            import importlib

            from functions.core import settings as settings_mod

            settings_mod.load.cache_clear()
            import functions.mcp_server.handler as h

            h = importlib.reload(h)
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            times = []
            for _ in range(args.warm):
                event = http_api_event("POST", "/mcp", headers=case_headers, body=body)
                t0 = time.perf_counter()
                result = h.handler(event, FakeContext())
                times.append((time.perf_counter() - t0) * 1e3)
                assert result["statusCode"] == expect, result
            return times[5:]  # drop the first few (JWKS fetch, first-call caches)

        anon = {k: v for k, v in headers.items() if k != "authorization"}
        no_auth = warm(anon, 401, "10")
        cached = warm(headers, 200, "10")
        uncached = warm(headers, 200, "0")
    finally:
        server.stop()

    print("Cold start (fresh process: import handler module, then first authenticated tools/list)")
    print("| measure | median ms | p95 ms | samples |")
    print("|---|---|---|---|")
    for key in ("init_ms", "first_invoke_ms", "process_ms"):
        print(row(key, [c[key] for c in cold]))
    print()
    print("Init phase of every function (fresh process: import its handler module)")
    print("| function | median ms | p95 ms | samples |")
    print("|---|---|---|---|")
    for name, values in inits.items():
        print(row(name, values))
    print()
    print("Warm invocations through the Lambda handler (tools/list)")
    print("| case | median ms | p95 ms | samples |")
    print("|---|---|---|---|")
    print(row("no token (401 challenge)", no_auth))
    print(row("valid token, grant cached", cached))
    print(row("valid token, grant read from DynamoDB (moto)", uncached))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
