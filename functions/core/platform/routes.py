"""The kit's public HTTP surface: the one home of every route path.

The CDK stack maps exactly these routes to their functions, the local gateway serves
exactly these routes, and the metadata documents advertise URLs built from these paths,
so AWS and `make dev` cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MCP_PATH: Final = "/mcp"
# Everything under /mcp/, down to "/mcp/" itself: API Gateway refuses a route path ending in
# "/", so the trailing-slash spelling of the MCP URL is reached through a greedy path
# variable; the MCP function answers 404 for any other path below /mcp/.
MCP_SUBPATHS: Final = MCP_PATH + "/{proxy+}"
# RFC 9728 section 3.1: the well-known URI is inserted before the resource's path.
PRM_ROOT_PATH: Final = "/.well-known/oauth-protected-resource"
PRM_MCP_PATH: Final = PRM_ROOT_PATH + MCP_PATH
# RFC 8414 section 3: issuer without a path -> metadata at the root well-known URI.
AS_METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
# RFC 8414 section 2 names: registration_endpoint, revocation_endpoint; RFC 7592 section 1:
# the client configuration endpoint.
REGISTRATION_PATH: Final = "/register"
CLIENT_CONFIGURATION_PATH: Final = "/register/{client_id}"
AUTHORIZE_PATH: Final = "/authorize"
CALLBACK_PATH: Final = "/oauth/callback"
CONSENT_PATH: Final = "/consent"
TOKEN_PATH: Final = "/token"
REVOCATION_PATH: Final = "/revoke"
# The person's connected agents (list, revoke one, revoke all): pages of the authorization function.
ACCOUNT_AGENTS_PATH: Final = "/account/agents"
ACCOUNT_REVOKE_PATH: Final = ACCOUNT_AGENTS_PATH + "/revoke"
ACCOUNT_REVOKE_ALL_PATH: Final = ACCOUNT_AGENTS_PATH + "/revoke-all"

FunctionName = Literal["mcp_server", "metadata", "registration", "authorization", "token", "deprovisioning"]
Method = Literal["GET", "POST", "PUT", "DELETE", "OPTIONS", "ANY"]
# API Gateway's catch-all method: a route naming the request's method wins over it.
ANY_METHOD: Final = "ANY"


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: its package under functions/ and its handler entry point."""

    name: FunctionName
    handler: str  # "module.attribute", importable from the asset root


@dataclass(frozen=True)
class Route:
    """One API Gateway route: HTTP method (or ``ANY``), path, and the function that serves it."""

    method: Method
    path: str
    function: FunctionName

    @property
    def route_key(self) -> str:
        """The API Gateway HTTP API route key, e.g. ``POST /mcp``."""
        return f"{self.method} {self.path}"


FUNCTIONS: Final[dict[FunctionName, FunctionSpec]] = {
    "mcp_server": FunctionSpec("mcp_server", "functions.mcp_server.handler.handler"),
    "metadata": FunctionSpec("metadata", "functions.metadata.handler.handler"),
    "registration": FunctionSpec("registration", "functions.registration.handler.handler"),
    "authorization": FunctionSpec("authorization", "functions.authorization.handler.handler"),
    "token": FunctionSpec("token", "functions.token.handler.handler"),
    # No route: EventBridge invokes it (Cognito admin calls via CloudTrail, and a schedule).
    "deprovisioning": FunctionSpec("deprovisioning", "functions.deprovisioning.handler.handler"),
}

# The routes a function's router names (``edge.Router.route``); each is also in ROUTES.
PRM_MCP = Route("GET", PRM_MCP_PATH, "metadata")
PRM_ROOT = Route("GET", PRM_ROOT_PATH, "metadata")
AS_METADATA = Route("GET", AS_METADATA_PATH, "metadata")
REGISTRATION = Route("POST", REGISTRATION_PATH, "registration")
CLIENT_READ = Route("GET", CLIENT_CONFIGURATION_PATH, "registration")
CLIENT_UPDATE = Route("PUT", CLIENT_CONFIGURATION_PATH, "registration")
CLIENT_DELETE = Route("DELETE", CLIENT_CONFIGURATION_PATH, "registration")
AUTHORIZATION = Route("GET", AUTHORIZE_PATH, "authorization")
CALLBACK = Route("GET", CALLBACK_PATH, "authorization")
CONSENT = Route("POST", CONSENT_PATH, "authorization")
CONSENT_RELOADED = Route("GET", CONSENT_PATH, "authorization")
# The person's connected agents; its Cognito sign-in returns through CALLBACK_PATH too.
ACCOUNT_AGENTS = Route("GET", ACCOUNT_AGENTS_PATH, "authorization")
ACCOUNT_REVOKE = Route("POST", ACCOUNT_REVOKE_PATH, "authorization")
ACCOUNT_REVOKE_ALL = Route("POST", ACCOUNT_REVOKE_ALL_PATH, "authorization")
TOKEN = Route("POST", TOKEN_PATH, "token")
TOKEN_PREFLIGHT = Route("OPTIONS", TOKEN_PATH, "token")
REVOCATION = Route("POST", REVOCATION_PATH, "token")
REVOCATION_PREFLIGHT = Route("OPTIONS", REVOCATION_PATH, "token")

ROUTES: Final[tuple[Route, ...]] = (
    # MCP Streamable HTTP: POST carries JSON-RPC. Every other method reaches the function too:
    # OPTIONS is the CORS preflight of browser-based clients (origins in KIT_ALLOWED_ORIGINS);
    # GET (SSE stream), DELETE (session end) and the rest get 405 at once from a stateless
    # JSON server, as the transport spec allows, instead of API Gateway's 404.
    Route("POST", MCP_PATH, "mcp_server"),
    Route("ANY", MCP_PATH, "mcp_server"),
    Route("ANY", MCP_SUBPATHS, "mcp_server"),
    # Discovery documents, readable cross-origin by browser-based MCP clients.
    PRM_MCP,
    Route("OPTIONS", PRM_MCP_PATH, "metadata"),
    PRM_ROOT,
    Route("OPTIONS", PRM_ROOT_PATH, "metadata"),
    AS_METADATA,
    Route("OPTIONS", AS_METADATA_PATH, "metadata"),
    # RFC 7591 registration and RFC 7592 management.
    REGISTRATION,
    Route("OPTIONS", REGISTRATION_PATH, "registration"),
    CLIENT_READ,
    CLIENT_UPDATE,
    CLIENT_DELETE,
    # The browser-facing part of the facade: authorization request, Cognito callback, consent.
    AUTHORIZATION,
    CALLBACK,
    CONSENT,
    CONSENT_RELOADED,
    ACCOUNT_AGENTS,
    ACCOUNT_REVOKE,
    ACCOUNT_REVOKE_ALL,
    # Back-channel endpoints (RFC 6749 section 3.2, RFC 7009).
    TOKEN,
    TOKEN_PREFLIGHT,
    REVOCATION,
    REVOCATION_PREFLIGHT,
)
