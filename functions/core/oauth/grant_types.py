"""The grant types the token endpoint serves (RFC 6749 sections 4.1.3 and 6).

``TokenService`` refuses every other one (``unsupported_grant_type``) and the RFC 8414
document advertises exactly these (``grant_types_supported``).
"""

from __future__ import annotations

from typing import Final, Literal

GrantType = Literal["authorization_code", "refresh_token"]
GRANT_TYPES: Final[tuple[GrantType, ...]] = ("authorization_code", "refresh_token")
