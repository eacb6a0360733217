"""The programs ``make bench`` runs in fresh interpreters, against a built asset.

Each reads ``sys.argv[1]`` (the asset and runtime directories, :data:`infra.runtime_probe.PRELUDE`)
and its own arguments from ``sys.argv[2:]``, and prints one JSON line of figures.
"""

from __future__ import annotations

from infra import runtime_probe

CONTEXT = """
class Context:
    function_name = "bench"
    aws_request_id = "req-1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"
    def get_remaining_time_in_millis(self):
        return 29_000
"""

_BARE_SERVER = """
from mangum import Mangum
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

server = MCPServer("bare")

@server.tool()
def whoami() -> dict:
    "Who is calling."
    return {"sub": "anonymous"}

@server.tool()
def list_todos() -> list[dict]:
    "List to-do items."
    return []

@server.tool()
def add_todo(title: str) -> dict:
    "Add a to-do item."
    return {"title": title}

@server.tool()
def complete_todo(id: str) -> dict:
    "Complete a to-do item."
    return {"id": id}

async def app(scope, receive, send):
    manager = StreamableHTTPSessionManager(app=server._lowlevel_server, json_response=True, stateless=True)
    async with manager.run():
        await manager.handle_request(scope, receive, send)

handler = Mangum(app, lifespan="off")
"""

_TIMED_FIRST_REQUEST = """
t1 = time.perf_counter()
%s
result = handler(json.loads(sys.argv[2]), Context())
t2, c2 = time.perf_counter(), time.process_time()
assert result["statusCode"] == 200 and '"tools"' in result["body"], result
print(json.dumps({
    "init_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3, "cpu_ms": (c2 - c0) * 1e3
}))
"""

COLD_KIT = (
    runtime_probe.PRELUDE
    + CONTEXT
    + """c0, t0 = time.process_time(), time.perf_counter()
import functions.mcp_server.handler as h
handler = h.handler
"""
    + _TIMED_FIRST_REQUEST % ""
)

COLD_BARE = (
    runtime_probe.PRELUDE
    + CONTEXT
    + "c0, t0 = time.process_time(), time.perf_counter()\n"
    + _BARE_SERVER
    + _TIMED_FIRST_REQUEST % ""
)

# The floor under the kit's cold start: the bare server plus what any kit on the kit's required
# libraries must do: load botocore and create the DynamoDB client, load python-jose's JWK with
# its cryptography backend and Powertools' Logger and Metrics (with the cyclic collector paused
# during init as the kit's handler does), and read one item (the grant) in the first request.
# The kit's own code and work are what it adds above this.
COLD_FLOOR = (
    runtime_probe.PRELUDE
    + CONTEXT
    + """c0, t0 = time.process_time(), time.perf_counter()
import gc, os
gc.disable()
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, jose.jwk, jose.jws
from functions.core.platform import aws
ddb = aws.dynamodb()
"""
    + _BARE_SERVER
    + "gc.freeze(); gc.enable()\n"
    + _TIMED_FIRST_REQUEST
    % 'ddb.get_item(TableName=os.environ["GRANTS_TABLE"], Key={"pk": {"S": "GRANT#floor"}}, ConsistentRead=True)'
)

# FastMCP 4.1 with the token verifier of its AWSCognitoProvider (the class that provider uses to
# check Cognito access tokens: issuer, client_id, signature from the pool's JWKS). The provider
# itself cannot run offline: it fetches discovery from a fixed https://cognito-idp.<region>
# .amazonaws.com URL, and it answers MCP requests with tokens of its own OAuth proxy, not
# Cognito's. Run in its own venv (build/fastmcp-venv), with bytecode as pip installs it.
COLD_FASTMCP = (
    """import json, sys, time
c0, t0 = time.process_time(), time.perf_counter()
from fastmcp import FastMCP
from fastmcp.server.auth.providers.aws import AWSCognitoTokenVerifier
from mangum import Mangum
cfg = json.loads(sys.argv[1])
auth = AWSCognitoTokenVerifier(
    issuer=cfg["issuer"], audience=cfg["client_id"], jwks_uri=cfg["jwks_uri"], algorithm="RS256"
)
server = FastMCP("fastmcp-cognito", auth=auth)

@server.tool
def whoami() -> dict:
    "Who is calling."
    return {"sub": "anonymous"}

@server.tool
def list_todos() -> list[dict]:
    "List to-do items."
    return []

@server.tool
def add_todo(title: str) -> dict:
    "Add a to-do item."
    return {"title": title}

@server.tool
def complete_todo(id: str) -> dict:
    "Complete a to-do item."
    return {"id": id}

handler = Mangum(server.http_app(path="/mcp", stateless_http=True, json_response=True), lifespan="auto")

class Context:
    aws_request_id = "r"
    function_name = "f"
"""
    + _TIMED_FIRST_REQUEST % ""
)

# Function log volume and peak memory, with the production log level (INFO). The peak is the
# process's own high-water mark (VmHWM, KiB, reset by execve): getrusage's ru_maxrss is not,
# on Linux it keeps the larger RSS of the process that spawned this one (here the bench
# itself, ~150 MiB), which is what it reported before.
LOGS = (
    runtime_probe.PRELUDE
    + CONTEXT
    + """
import io
class Counting(io.TextIOBase):
    def __init__(self, inner):
        self.inner, self.bytes = inner, 0
    def write(self, text):
        self.bytes += len(text.encode())
        return len(text)
    def flush(self):
        pass
sys.stdout = counting = Counting(sys.stdout)
sys.stderr = counting_err = Counting(sys.stderr)
import functions.mcp_server.handler as h
events = {name: json.loads(raw) for name, raw in json.loads(sys.argv[2]).items()}
for name in events:
    h.handler(events[name], Context())  # warm-up: JWKS, grant cache
out = {}
for name in events:
    before = counting.bytes + counting_err.bytes
    for _ in range(10):
        result = h.handler(events[name], Context())
        assert result["statusCode"] == 200, result
    out[f"{name} log_bytes"] = (counting.bytes + counting_err.bytes - before) / 10
with open("/proc/self/status", encoding="ascii") as status:
    [hwm_kib] = [line.split()[1] for line in status if line.startswith("VmHWM:")]
out["peak_rss_mib"] = int(hwm_kib) / 1024
sys.__stdout__.write(json.dumps(out) + "\\n")
# Flushed here: the handler's init freezes every object then alive (gc.freeze), this stream
# included, and a frozen object is not finalized (so not flushed) when the interpreter exits.
sys.__stdout__.flush()
"""
)

AUTH_LOOP = (
    runtime_probe.PRELUDE
    + """
import base64, statistics
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from functions.core.platform import settings as settings_mod
from functions.core.state.grants import CachedGrants, DynamoGrantRepository
from functions.core.cognito.jwks import JwksCache, fetch_jwks
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier

token = sys.argv[2]
s = settings_mod.load(settings_mod.McpSettings)
jwks = fetch_jwks(s.jwks_url)
keys = JwksCache(s.jwks_url, min_refresh_seconds=60, fetcher=lambda _u: jwks)
verifier = CognitoAccessTokenVerifier(s, keys, verified_cache_size=0)  # every call verifies in full
cached = CognitoAccessTokenVerifier(s, keys)  # what a warm request meets: the token seen before
grants = CachedGrants(DynamoGrantRepository(s.grants_table), 60)  # first read from moto, then hits
head, _, sig = token.rpartition(".")
kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["kid"]
jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
from jose import jwk as jose_jwk
public = jose_jwk.construct(jwk, algorithm="RS256").prepared_key
message, signature = head.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))

def raw():
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

def check():
    grants.get(verifier.verify(token).origin_jti)

def repeat():
    grants.get(cached.verify(token).origin_jti)

check()
repeat()
n = int(sys.argv[3])
samples = {"raw": [], "check": [], "repeat": []}
for _ in range(9):
    for name, fn in (("raw", raw), ("check", check), ("repeat", repeat)):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples[name].append((time.perf_counter() - t) / n * 1e6)
print(json.dumps({k: statistics.median(v) for k, v in samples.items()}))
"""
)

WARM = (
    runtime_probe.PRELUDE
    + CONTEXT
    + """
import statistics
from functions.mcp_server import auth as auth_mod
real = auth_mod.McpAuthenticator.authenticate
spent = []
bypass = {}

def timed(self, authorization):
    if "principal" in bypass:
        return bypass["principal"]
    t = time.perf_counter()
    try:
        return real(self, authorization)
    finally:
        spent.append((time.perf_counter() - t) * 1e6)

auth_mod.McpAuthenticator.authenticate = timed
import functions.mcp_server.handler as h

events = {name: json.loads(raw) for name, raw in json.loads(sys.argv[2]).items()}
n = int(sys.argv[3])

def run(name):
    t = time.perf_counter()
    result = h.handler(events[name], Context())
    elapsed = (time.perf_counter() - t) * 1e3
    assert result["statusCode"] == 200 and '"isError":true' not in result["body"].replace(" ", ""), result
    return elapsed

for name in events:
    run(name)  # JWKS fetch, grant read, first-call caches
principal = real(h._asgi.app._auth, events["tools/list"]["headers"]["authorization"])
out = {}
spent.clear()
for round_ in range(5):
    for mode in ("on", "off"):
        if mode == "off":
            bypass["principal"] = principal
        else:
            bypass.pop("principal", None)
        for name in events:
            out.setdefault(f"{name} {mode}", []).extend(run(name) for _ in range(n // 5))
bypass.pop("principal", None)
print(json.dumps({"auth_us": statistics.median(spent), **{k: statistics.median(v) for k, v in out.items()}}))
"""
)
