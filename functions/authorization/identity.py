"""Who signed in at Cognito, and what they may grant (the scope ceilings of their groups)."""

from __future__ import annotations

from dataclasses import dataclass

from jose import jwt
from jose.exceptions import JOSEError

from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier, TokenRejected
from functions.core.oauth import scopes
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings


@dataclass(frozen=True)
class UserInfo:
    """Who signed in, from Cognito's verified access token (``email`` from its ID token, "" if none).

    ``origin_jti`` names the Cognito sign-in session (the kit's grant id); ``access_expires_at`` is the
    access token's ``exp`` (epoch seconds).
    """

    sub: str
    username: str
    email: str
    groups: tuple[str, ...]
    origin_jti: str
    access_expires_at: int


def learn_user(
    settings: FacadeSettings, verifier: CognitoAccessTokenVerifier, access_token: str, id_token: str | None
) -> UserInfo | None:
    """The user behind Cognito's answer at the callback; None when anything does not add up.

    The access token is fully verified (signature, issuer, gateway client, audience): it is
    what the kit hands to the client later and what gives ``sub``, ``origin_jti`` and groups.
    """
    try:
        access = verifier.verify(access_token)
    except TokenRejected as exc:
        logger.warning("Cognito access token rejected at the callback", extra={"reason": exc.reason})
        return None
    email = ""
    if id_token:
        # OIDC Core 1.0 section 3.1.3.7 (6): an ID token received directly from the token
        # endpoint over TLS may be trusted without checking its signature. iss, aud and sub
        # are still compared, with the settings and with the verified access token.
        try:
            claims = jwt.get_unverified_claims(id_token)
        except JOSEError:
            return None
        if (
            claims.get("iss") != settings.cognito_issuer
            or claims.get("aud") != settings.gateway_client_id
            or claims.get("sub") != access.sub
        ):
            logger.warning("Cognito ID token does not match the access token")
            return None
        email = str(claims.get("email") or "")
    return UserInfo(access.sub, access.username, email, access.groups, access.origin_jti, access.exp)


def ceiling(settings: FacadeSettings, requested: tuple[str, ...], groups: tuple[str, ...]) -> tuple[str, ...]:
    """Scopes the user may grant: a scope with a ceiling (SCOPE_GROUP_CEILINGS) needs one of its groups."""
    return scopes.within_ceilings(requested, groups, settings.scope_group_ceilings)
