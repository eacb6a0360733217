"""``make bench``: the performance table, every row measured side by side in one run.

Everything runs the way the Lambda runtime runs it: each function's asset as packaging lays
it out (built for this machine's platform: the aarch64 extensions cannot load here), in a
fresh CPython of the runtime's minor version (3.13), isolated, with the asset (read-only) and
the runtime-provided boto3 on ``sys.path`` and no bytecode written (``infra/runtime_probe.py``).
DynamoDB and the JWKS are a moto server on a loopback port this script starts.

Rows (medians of interleaved samples; ratios are taken between figures of this run):

* init of each function: as shipped (bytecode) vs the same code with a warm ``__pycache__``
  (the best case: what a writable code directory would reach after one run), and as shipped
  before (sources only, read-only: every module compiled at every cold start);
* MCP cold start: fresh process, import the handler, first authenticated ``tools/list``
  through the Lambda handler, vs a bare SDK server (``MCPServer``, 4 tools, the same
  stateless JSON transport and Mangum) answering one ``tools/list``, vs the floor under the
  kit (that server plus the libraries the kit must load and one GetItem: what the kit's own
  code adds is the rest), and vs FastMCP 4.1 with the token verifier of its
  ``AWSCognitoProvider`` (own cached venv, ``build/fastmcp-venv``);
* auth check (verify + claims + grant-cache hit) vs a raw ``cryptography`` RSA-2048 verify
  of the same token, tight loop;
* the same check inside the handler's request path, and warm ``tools/list`` /
  ``tools/call whoami`` through the handler with auth on vs auth bypassed;
* the figures the README's cost arithmetic uses: peak RSS of the MCP function, the bytes a
  warm call writes to the function log (at the deployed INFO level) and to the access log;
* asset sizes (the deployed aarch64 assets) against their budgets.

    python scripts/bench_mcp.py [--rounds 9] [--warm 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The kit's test app (its scopes are the ones the tokens below carry); the children inherit it.
os.environ["KIT_APP_PATH"] = str(ROOT / "tests" / "fixtures" / "app")

from functions.core.cognito.jwks import INITIALIZATION_TYPE  # noqa: E402
from infra import packaging, runtime_probe  # noqa: E402
from scripts.bench import children, layouts  # noqa: E402
from scripts.bench.stack import bench_stack  # noqa: E402
from scripts.bench.table import build_table  # noqa: E402

median = layouts.median

# What Lambda active tracing sets for a sampled request (the daemon is UDP on loopback here).
TRACING_ENV = {
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9, help="cold-start samples per case (fresh processes)")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations per case")
    parser.add_argument("--loop", type=int, default=2000, help="iterations per auth-check sample")
    args = parser.parse_args()

    from functions.core.platform.routes import FUNCTIONS

    work = Path(tempfile.mkdtemp(prefix="kit-bench-"))
    print(f"building assets for this machine under {work} ...", file=sys.stderr)
    twins = layouts.build_twins(work)
    fastmcp = layouts.fastmcp_python()
    runtime = runtime_probe.runtime_dir()
    with bench_stack() as stack:

        def run(asset: Path, code: str, *argv: str, **env: str) -> dict[str, Any]:
            """``code`` in a fresh interpreter on ``asset``, in the stack's environment plus ``env``."""
            return runtime_probe.run_in_asset(asset, runtime, code, *argv, env={**stack.env, **env})

        # --- init of every function -----------------------------------------------------
        for name, spec in FUNCTIONS.items():
            layouts.warm_pycache(twins[name]["cached"], runtime, spec.handler.rpartition(".")[0])
        inits: dict[str, dict[str, float]] = {}
        for name, spec in FUNCTIONS.items():
            module = spec.handler.rpartition(".")[0]
            samples = layouts.interleaved(
                args.rounds,
                {
                    variant: (lambda v=variant, m=module, n=name: run(twins[n][v], runtime_probe.IMPORT_CHILD, m))
                    for variant in ("shipped", "cached", "sources")
                },
            )
            inits[name] = {v: median([s["init_ms"] for s in values]) for v, values in samples.items()}

        # --- MCP cold start vs a bare SDK server and FastMCP ---------------------------------
        mcp_asset = twins["mcp_server"]["shipped"]
        list_event = json.dumps(stack.list_event)
        cold_samples = layouts.interleaved(
            args.rounds,
            {
                "kit": lambda: run(mcp_asset, children.COLD_KIT, list_event),
                "bare": lambda: run(mcp_asset, children.COLD_BARE, list_event),
                "floor": lambda: run(mcp_asset, children.COLD_FLOOR, list_event),
                # A SnapStart init: no JWKS prefetch, so its first request is what a restore runs.
                "snapstart": lambda: run(
                    mcp_asset, children.COLD_KIT, list_event, **{INITIALIZATION_TYPE: "snap-start"}
                ),
                "fastmcp": lambda: layouts.run_fastmcp(fastmcp, stack.peer, list_event),
            },
        )
        parts = {"ms": "total_ms", "init": "init_ms", "first": "first_ms", "cpu": "cpu_ms"}
        cold = {
            f"{case}_{part}": median([s[key] for s in samples])
            for case, samples in cold_samples.items()
            for part, key in parts.items()
        }

        # --- auth check vs raw verify, then warm through the handler ---------------------
        loop = run(mcp_asset, children.AUTH_LOOP, stack.token, str(args.loop))
        events = {"tools/list": list_event, "tools/call whoami": json.dumps(stack.whoami_event)}
        warm = run(mcp_asset, children.WARM, json.dumps(events), str(args.warm))
        # At the level infra/functions.py deploys.
        logs = run(mcp_asset, children.LOGS, json.dumps(events), POWERTOOLS_LOG_LEVEL="INFO")
        # The same with active tracing as deployed: the runtime's daemon address (UDP on
        # loopback here, nothing listens) and a sampled trace header make the kit load Tracer.
        traced = run(mcp_asset, children.LOGS, json.dumps(events), POWERTOOLS_LOG_LEVEL="INFO", **TRACING_ENV)
        logs["traced_peak_rss_mib"] = traced["peak_rss_mib"]

    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in FUNCTIONS:
            out = Path(tmp) / name
            out.mkdir()
            sizes[name] = packaging.build_asset(name, out)[0]
    shutil.rmtree(work, ignore_errors=True)

    table = build_table(inits, cold, loop, warm, logs, sizes)
    print(f"\nmcp-cognito-kit benchmark: {time.strftime('%Y-%m-%d %H:%M')}, CPython 3.13 on {os.uname().machine}")
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
