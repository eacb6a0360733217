from __future__ import annotations

import pytest

from functions.core.platform.settings import CoreSettings, Env, McpSettings, SettingsError

BASE = {
    Env.BASE_URL: "https://mcp.example.com",
    Env.USER_POOL_ID: "us-east-1_Abc123",
    Env.REGION: "us-east-1",
    Env.GATEWAY_CLIENT_ID: "client",
    Env.GRANTS_TABLE: "grants",
    Env.CLIENTS_TABLE: "clients",
    Env.APP_TABLES: '{"notes": "app-data"}',
}


def test_valid_environment() -> None:
    s = McpSettings.from_env(BASE)
    assert s.mcp_url == "https://mcp.example.com/mcp"
    assert s.cognito_issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123"
    assert s.jwks_url == s.cognito_issuer + "/.well-known/jwks.json"
    assert s.resource_server_id == s.mcp_url
    assert s.grant_cache_seconds == 10
    assert s.resource_binding is True


def test_missing_variable_is_named() -> None:
    env = dict(BASE)
    del env[Env.GATEWAY_CLIENT_ID]
    with pytest.raises(SettingsError, match=Env.GATEWAY_CLIENT_ID):
        McpSettings.from_env(env)


def test_malformed_variable_is_named() -> None:
    with pytest.raises(SettingsError, match=Env.GRANT_CACHE_SECONDS):
        McpSettings.from_env({**BASE, Env.GRANT_CACHE_SECONDS: "soon"})


@pytest.mark.parametrize(
    "url",
    [
        "http://mcp.example.com",
        "https://mcp.example.com/prefix",
        "https://mcp.example.com?x=1",
        "ftp://x",
        "mcp.example.com",
    ],
)
def test_base_url_must_be_an_https_origin(url: str) -> None:
    with pytest.raises(SettingsError, match=Env.BASE_URL):
        CoreSettings.from_env({Env.BASE_URL: url})


def test_http_allowed_for_loopback_and_trailing_slash_dropped() -> None:
    assert CoreSettings.from_env({Env.BASE_URL: "http://localhost:8000/"}).base_url == "http://localhost:8000"


def test_allowed_origins_are_comma_separated() -> None:
    s = McpSettings.from_env({**BASE, Env.ALLOWED_ORIGINS: "http://localhost:6274, https://app.example"})
    assert s.allowed_origins == ("http://localhost:6274", "https://app.example")


def test_malformed_redirect_pattern_fails_at_cold_start() -> None:
    from functions.core.platform.settings import RegistrationSettings

    env = {Env.BASE_URL: "https://mcp.example.com", Env.CLIENTS_TABLE: "clients", Env.ARTEFACTS_TABLE: "artefacts"}
    assert RegistrationSettings.from_env({**env, Env.REGISTRATION_REDIRECT_PATTERNS: "https://*.corp.example/*"})
    with pytest.raises(SettingsError, match=Env.REGISTRATION_REDIRECT_PATTERNS):
        RegistrationSettings.from_env({**env, Env.REGISTRATION_REDIRECT_PATTERNS: "https://*/*"})


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_http_base_url_allowed_on_every_loopback_host(host: str) -> None:
    # The same loopback hosts as redirect URIs and CIMD URLs (functions.core.oauth.uris.LOOPBACK_HOSTS).
    assert CoreSettings.from_env({Env.BASE_URL: f"http://{host}:8000"}).base_url == f"http://{host}:8000"


def test_grant_lifetime_in_seconds() -> None:
    from tests.facade_fakes import facade_settings

    assert facade_settings(grant_lifetime_days=7).grant_lifetime_seconds == 7 * 86_400


def test_settings_models_build_their_validators_only_when_first_used() -> None:
    import subprocess
    import sys

    # A fresh interpreter: this one may have validated every model already. Each function
    # validates one model, so importing the module must not build the others (cold start).
    code = (
        "from functions.core.platform import settings as s\n"
        "import functions.core.platform.topology as t\n"
        "models = [s.CoreSettings, s.MetadataSettings, s.CognitoSettings, s.McpSettings,\n"
        "          s.RegistrationSettings, s.ManagementSettings, s.FacadeSettings]\n"
        "print(sum(m.__pydantic_complete__ for m in models))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
