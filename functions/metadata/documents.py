"""The discovery documents, as pure functions of settings.

* RFC 9728 Protected Resource Metadata, for the MCP resource ``<B>/mcp``.
* RFC 8414 Authorization Server Metadata for the kit's facade, whose ``issuer`` is ``<B>``
  exactly (RFC 8414 section 3.3: the issuer must equal the URL the document came from,
  minus the well-known suffix), so clients never see Cognito's own issuer here.
"""

from __future__ import annotations

from typing import Any

from functions.core.oauth import scopes
from functions.core.oauth.client_auth import AUTH_METHODS
from functions.core.oauth.grant_types import GRANT_TYPES
from functions.core.platform.routes import AUTHORIZE_PATH, REGISTRATION_PATH, REVOCATION_PATH, TOKEN_PATH
from functions.core.platform.settings import CoreSettings, MetadataSettings


def protected_resource_metadata(settings: CoreSettings) -> dict[str, Any]:
    """The RFC 9728 section 2 document for the MCP resource ``<B>/mcp``."""
    return {
        "resource": settings.mcp_url,
        "authorization_servers": [settings.issuer],
        # MCP spec: offline_access is not a resource scope and is never listed here.
        "scopes_supported": list(scopes.scope_names()),
        "bearer_methods_supported": ["header"],
        "resource_name": settings.resource_name,
    }


def authorization_server_metadata(settings: MetadataSettings) -> dict[str, Any]:
    """The RFC 8414 section 2 document; what it advertises about registration follows the policy.

    Grant types and client authentication methods are the ones the token endpoint enforces
    (``GRANT_TYPES``, ``client_auth.AUTH_METHODS``), so the document cannot promise more.
    """
    base = settings.issuer
    policy = settings.registration_policy
    # RFC 8414 section 2: registration_endpoint only where RFC 7591 registration is offered.
    registration = {"registration_endpoint": base + REGISTRATION_PATH} if policy.offers_registration else {}
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        **registration,
        "revocation_endpoint": base + REVOCATION_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        # OAuth 2.1 / MCP: PKCE with S256 only; clients must refuse an AS without this field.
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(scopes.scope_names()),
        "client_id_metadata_document_supported": policy.accepts_cimd,
        # RFC 9207: the authorization response carries iss.
        "authorization_response_iss_parameter_supported": True,
    }
