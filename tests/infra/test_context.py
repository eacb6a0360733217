"""Where context values come from (cdk.json, kit:stages, -c flags) and how the new keys validate."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from functions.core.platform.settings import (
    OPERATOR_ENV,
    CognitoSettings,
    Env,
    FacadeSettings,
    McpSettings,
    MetadataSettings,
    RegistrationPolicy,
    RegistrationSettings,
)
from infra.config import NUMERIC_SETTINGS, PREFIX, ConfigError, KitConfig, cdk_json_context
from infra.context import decode_value, parse_context_args, resolve
from tests.conftest import TEST_APP

pytestmark = pytest.mark.infra

POOL = {
    "userPoolId": "us-east-1_Example123",
    "domainUrl": "https://example-team.auth.us-east-1.amazoncognito.com",
    "resourceBinding": True,
}


def _ctx(**overrides: Any) -> dict[str, Any]:
    ctx = cdk_json_context()
    ctx.update({PREFIX + "app": str(TEST_APP)})
    ctx.update({PREFIX + k: v for k, v in overrides.items()})
    return ctx


def _resolved(context: dict[str, Any], explicit: frozenset[str] = frozenset()) -> dict[str, Any]:
    return resolve(context, cdk_json_context(), explicit=explicit)


# --- command line ---------------------------------------------------------------------------


def test_context_flags_are_read_as_the_cdk_cli_reads_them() -> None:
    argv = ["-c", "kit:stageName=prod", "--context", "kit:maxClients=5", "--context=kit:x=a=b"]
    assert parse_context_args(argv) == {"kit:stageName": "prod", "kit:maxClients": "5", "kit:x": "a=b"}


@pytest.mark.parametrize("argv", [["-c"], ["--profile", "x"], ["-c", "novalue"], ["-c", "=1"]])
def test_anything_but_context_flags_is_refused(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_context_args(argv)


def test_flag_strings_become_json_where_the_default_is_not_a_string() -> None:
    assert decode_value('["COGNITO","CorpSAML"]', ["COGNITO"]) == ["COGNITO", "CorpSAML"]
    assert decode_value("500", 10000) == 500
    assert decode_value("null", None) is None
    assert decode_value('{"userPoolId": "x"}', None) == {"userPoolId": "x"}
    assert decode_value("true", "open") == "true"  # a string key keeps its text
    assert decode_value("my-login", None) == "my-login"  # not JSON: left for validation to judge


def test_existing_pool_given_as_flags_parses() -> None:
    flags = {
        "kit:existingUserPool": '{"userPoolId":"us-east-1_Example123","domainUrl":'
        '"https://example-team.auth.us-east-1.amazoncognito.com","resourceBinding":true}',
        "kit:identityProviders": '["COGNITO","CorpSAML"]',
    }
    cfg = KitConfig.from_mapping(_resolved({**cdk_json_context(), **flags}, frozenset(flags)))
    assert cfg.existing_user_pool is not None
    assert cfg.existing_user_pool.user_pool_id == "us-east-1_Example123"
    assert cfg.existing_user_pool.region == "us-east-1"
    assert cfg.identity_providers == ("COGNITO", "CorpSAML")


# --- stages: flag > stage entry > default ----------------------------------------------------


def _stages(**entries: dict[str, Any]) -> dict[str, Any]:
    return _ctx(stages=entries)


def test_stage_entry_beats_the_default() -> None:
    ctx = {**_stages(dev={}, prod={"kit:mfa": "required", "kit:maxClients": 50}), "kit:stageName": "prod"}
    values = _resolved(ctx)
    assert values["kit:mfa"] == "required"
    assert values["kit:maxClients"] == 50
    dev = _resolved({**ctx, "kit:stageName": "dev"})
    assert dev["kit:mfa"] == "optional"


def test_flag_beats_the_stage_entry() -> None:
    ctx = {**_stages(prod={"kit:mfa": "required", "kit:maxClients": 50}), "kit:stageName": "prod"}
    # An explicit flag equal to the default still wins (python app.py / build_app know their flags).
    assert _resolved({**ctx, "kit:mfa": "optional"}, frozenset({"kit:mfa"}))["kit:mfa"] == "optional"
    # Through the CDK CLI: a value that differs from cdk.json's, or a string where cdk.json has a number.
    assert _resolved({**ctx, "kit:maxClients": 7})["kit:maxClients"] == 7
    assert _resolved({**ctx, "kit:maxClients": "10000"})["kit:maxClients"] == 10000


def test_unknown_stage_key_and_stage_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="kit:stageName: 'staging' has no entry in kit:stages"):
        _resolved({**_stages(dev={}, prod={}), "kit:stageName": "staging"})
    with pytest.raises(ConfigError, match=r"kit:stages\.prod: unknown key 'kit:mfaa'"):
        _resolved(_stages(dev={}, prod={"kit:mfaa": "required"}))
    with pytest.raises(ConfigError, match=r"kit:stages\.prod: 'kit:stageName' cannot be set per stage"):
        _resolved(_stages(dev={}, prod={"kit:stageName": "dev"}))
    with pytest.raises(ConfigError, match="kit:registrationPolicyy: unknown key"):
        _resolved({**cdk_json_context(), "kit:registrationPolicyy": "closed"})


def test_an_empty_stage_map_admits_any_stage() -> None:
    assert _resolved({**_stages(), "kit:stageName": "anything"})["kit:stageName"] == "anything"


def test_every_stage_is_validated_at_each_synth() -> None:
    app = cdk.App(context=_stages(dev={}, prod={"kit:mfa": "sometimes"}))
    with pytest.raises(ConfigError, match=r"kit:stages\.prod: kit:mfa"):
        KitConfig.from_scope(app)
    good = cdk.App(context={**_stages(dev={}, prod={"kit:mfa": "required"}), "kit:stageName": "prod"})
    assert KitConfig.from_scope(good).mfa == "required"


def test_a_bad_flag_is_named_as_itself() -> None:
    app = cdk.App(context={**cdk_json_context(), "kit:registrationPolicy": "closd"})
    with pytest.raises(ConfigError, match=r"^kit:registrationPolicy: one of 'open', 'cimd-only', 'dcr-only', 'closed'"):
        KitConfig.from_scope(app, explicit=frozenset({"kit:registrationPolicy"}))


def test_cdk_json_stages_are_valid() -> None:
    for stage in cdk_json_context()["kit:stages"]:
        app = cdk.App(context={**cdk_json_context(), "kit:stageName": stage})
        assert KitConfig.from_scope(app).stage_name == stage


# --- the new keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("registrationPolicy", "closd"),
        ("registrationPolicy", "OPEN"),
        ("redirectPatterns", ["javascript:*"]),
        ("redirectPatterns", ["http://evil.example/*"]),
        ("redirectPatterns", "https://a.example/*"),
        ("redirectPatterns", ["https://a.example/x,https://b.example/y"]),
        ("maxClients", 0),
        ("clientIdleDays", 3651),
        ("registrationRatePerMinute", 0),
        ("grantLifetimeDays", 31),  # more than kit:refreshTokenDays (30)
        ("grantLifetimeDays", 0),
        ("refreshReuseGraceSeconds", 301),
        ("refreshReuseGraceSeconds", -1),
        ("jwksMinRefreshSeconds", 0),
        ("tokenLeewaySeconds", 121),
        ("identityProviders", []),
        ("identityProviders", ["COGNITO", "COGNITO"]),
        ("identityProviders", ["Corp SAML"]),
        ("defaultIdentityProvider", "CorpSAML"),  # not in kit:identityProviders
        ("existingUserPool", {"userPoolId": "us-east-1_Example123"}),
        ("existingUserPool", {**POOL, "userPoolId": "Example123"}),
        ("existingUserPool", {**POOL, "domainUrl": "http://example-team.auth.us-east-1.amazoncognito.com"}),
        ("existingUserPool", {**POOL, "domainUrl": "https://login.example.com/path"}),
        ("existingUserPool", {**POOL, "resourceBinding": "yes"}),
    ],
)
def test_bad_value_is_rejected_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"kit:{key}"):
        KitConfig.from_mapping(_ctx(**{key: value}))


def test_domain_prefix_contradicts_an_existing_pool() -> None:
    with pytest.raises(ConfigError, match="kit:cognitoDomainPrefix"):
        KitConfig.from_mapping(_ctx(existingUserPool=POOL, cognitoDomainPrefix="my-login"))


def test_policy_is_the_functions_enum() -> None:
    for policy in RegistrationPolicy:
        cfg = KitConfig.from_mapping(_ctx(registrationPolicy=policy.value))
        assert cfg.function_settings()[Env.REGISTRATION_POLICY] == policy.value


def test_cdk_json_documents_every_registration_policy() -> None:
    # An operator reads the choices in cdk.json's kit:doc: each value synth accepts is named there.
    doc = cdk_json_context()["kit:doc"]["kit:registrationPolicy"]
    assert [p.value for p in RegistrationPolicy if f"'{p.value}'" not in doc] == []


def test_grant_lifetime_defaults_to_the_refresh_token_days() -> None:
    assert KitConfig.from_mapping(_ctx(refreshTokenDays=90)).grant_lifetime_days == 90
    assert KitConfig.from_mapping(_ctx(refreshTokenDays=90, grantLifetimeDays=14)).grant_lifetime_days == 14


@pytest.mark.parametrize("setting", NUMERIC_SETTINGS, ids=lambda s: s.key)
def test_numeric_bounds_are_the_settings_models(setting: Any) -> None:
    low, high = setting.bounds()
    for ok in (low, high):
        value = int(ok) if setting.is_int else ok
        assert KitConfig.from_mapping(_ctx(**{setting.key: value})).numeric_settings[setting.env] == value
    for bad in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=f"kit:{setting.key}"):
            KitConfig.from_mapping(_ctx(**{setting.key: int(bad) if setting.is_int else bad}))


REQUIRED = {
    Env.BASE_URL: "https://mcp.example.com",
    Env.USER_POOL_ID: "us-east-1_Example123",
    Env.REGION: "us-east-1",
    Env.GATEWAY_CLIENT_ID: "gateway",
    Env.GRANTS_TABLE: "grants",
    Env.APP_TABLES: '{"notes": "notes"}',
    Env.CLIENTS_TABLE: "clients",
    Env.ARTEFACTS_TABLE: "artefacts",
    Env.COGNITO_DOMAIN_URL: "https://example-team.auth.us-east-1.amazoncognito.com",
    Env.KMS_KEY_ID: "key",
}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "existingUserPool": {**POOL, "resourceBinding": False},
            "identityProviders": ["COGNITO", "CorpSAML"],
            "defaultIdentityProvider": "CorpSAML",
            "registrationPolicy": "cimd-only",
            "redirectPatterns": ["https://*.corp.example/*", "cursor://anysphere.cursor-mcp/*"],
            "maxClients": 1,
            "refreshReuseGraceSeconds": 0,
            "jwksMinRefreshSeconds": 1.5,
        },
    ],
)
def test_what_synth_accepts_the_functions_accept_at_cold_start(overrides: dict[str, Any]) -> None:
    env = {**REQUIRED, **KitConfig.from_mapping(_ctx(**overrides)).function_settings()}
    for model in (MetadataSettings, CognitoSettings, McpSettings, RegistrationSettings, FacadeSettings):
        model.from_env(env)
    facade = FacadeSettings.from_env(env)
    if overrides:
        assert facade.resource_binding is False
        assert facade.default_identity_provider == "CorpSAML"
        assert facade.registration_policy is RegistrationPolicy.CIMD_ONLY
        assert facade.redirect_patterns == ("https://*.corp.example/*", "cursor://anysphere.cursor-mcp/*")


def test_every_operator_setting_has_a_kit_key() -> None:
    cfg = KitConfig.from_mapping(_ctx(identityProviders=["COGNITO", "CorpSAML"], defaultIdentityProvider="CorpSAML"))
    assert set(OPERATOR_ENV) <= set(cfg.function_settings())


# --- kit:grantIndexes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "indexes"),
    [
        (["by_user", "by_client"], ("by_user", "by_client")),  # cdk.json's default
        (["by_client", "by_user"], ("by_user", "by_client")),  # topology order, whatever the input's
        (["by_user"], ("by_user",)),
        ("by_user", ("by_user",)),  # -c kit:grantIndexes=by_user
        ("by_user,by_client", ("by_user", "by_client")),
        ([], ()),
        ("", ()),
    ],
)
def test_grant_indexes_name_the_indexes_the_stack_creates(given: Any, indexes: tuple[str, ...]) -> None:
    cfg = KitConfig.from_mapping(_ctx(grantIndexes=given))
    assert cfg.grant_indexes == indexes
    env = {**REQUIRED, **cfg.function_settings()}
    assert FacadeSettings.from_env(env).grant_indexes == indexes  # the functions read what synth wrote


def test_grant_indexes_default_is_every_index_of_the_grants_table() -> None:
    from functions.core.platform.topology import GRANT_INDEX_NAMES

    assert KitConfig.from_mapping(_ctx()).grant_indexes == GRANT_INDEX_NAMES == ("by_user", "by_client")


def test_grant_indexes_from_a_flag_beat_the_default() -> None:
    values = _resolved(_ctx(grantIndexes="by_user"))
    assert KitConfig.from_mapping(values).grant_indexes == ("by_user",)


@pytest.mark.parametrize(
    "value", [["by_usr"], "by_user,by_sub", ["by_user", "by_user"], "by_user,by_user", [1], {"by_user": True}, None]
)
def test_an_unknown_or_repeated_grant_index_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="kit:grantIndexes"):
        KitConfig.from_mapping(_ctx(grantIndexes=value))


@pytest.mark.parametrize("value", ["by_usr", "by_user,by_user"])
def test_the_functions_refuse_an_unknown_or_repeated_grant_index_at_cold_start(value: str) -> None:
    from functions.core.platform.settings import ManagementSettings, SettingsError

    with pytest.raises(SettingsError, match="GRANT_INDEXES"):
        ManagementSettings.from_env({**REQUIRED, Env.GRANT_INDEXES: value})
