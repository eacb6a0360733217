"""Client metadata documents for the metadata and redirect URI tests, and the refusal helper."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.clients.metadata import validate_client_metadata
from functions.core.platform.errors import OAuthError


def meta(**overrides: Any) -> dict[str, Any]:
    """A valid public client's metadata with ``overrides`` applied (None removes a member)."""
    doc: dict[str, Any] = {
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1:3000/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def rejected(doc: dict[str, Any], **kw: Any) -> OAuthError:
    """The 400 ``OAuthError`` that ``validate_client_metadata(doc, **kw)`` raises."""
    with pytest.raises(OAuthError) as info:
        validate_client_metadata(doc, **kw)
    assert info.value.status == 400
    return info.value
