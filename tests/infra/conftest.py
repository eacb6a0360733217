"""Synthesize the CDK app once per session and share the result (synth takes seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CUSTOM_HOST = "mcp.example.com"
CUSTOM_CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


@dataclass
class Synth:
    app: Any
    stack: Any
    template: Any  # aws_cdk.assertions.Template
    template_json: dict[str, Any]
    outdir: Path
    config: Any  # infra.config.KitConfig

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == type_}

    def one(self, type_: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.items()))


def _synth(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    from aws_cdk.assertions import Template

    from app import build_app
    from tests.conftest import TEST_APP

    # The kit's test app, not the demo: expectations come from synth.config.app.
    app, stack = build_app({"kit:app": str(TEST_APP), **(context or {})}, outdir=str(outdir))
    app.synth()  # runs cdk-nag: an unacknowledged error raises here
    template_file = outdir / f"{stack.stack_name}.template.json"
    return Synth(
        app=app,
        stack=stack,
        template=Template.from_stack(stack),
        template_json=json.loads(template_file.read_text()),
        outdir=outdir,
        config=stack.config,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default configuration, exactly as cdk.json defines it, serving the test app."""
    return _synth(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def synth_custom(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A production-like variant: custom domain, MFA required, threat protection, no retention."""
    return _synth(
        tmp_path_factory.mktemp("cdk-custom"),
        {
            "kit:stageName": "prod",
            "kit:customDomain": {"hostName": CUSTOM_HOST, "certificateArn": CUSTOM_CERT},
            "kit:mfa": "required",
            "kit:threatProtection": "enforced",
            "kit:retainData": False,
            "kit:cognitoDomainPrefix": "my-mcp-login",
        },
    )


EXISTING_POOL_ID = "us-east-1_Example123"
EXISTING_DOMAIN = "https://example-team.auth.us-east-1.amazoncognito.com"


@pytest.fixture(scope="session")
def synth_existing_pool(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The README's existing-pool example, given as strings exactly as `-c` flags arrive."""
    return _synth(
        tmp_path_factory.mktemp("cdk-existing-pool"),
        {
            "kit:existingUserPool": json.dumps(
                {"userPoolId": EXISTING_POOL_ID, "domainUrl": EXISTING_DOMAIN, "resourceBinding": True}
            ),
            "kit:identityProviders": '["COGNITO","CorpSAML"]',
        },
    )


@pytest.fixture(scope="session")
def synth_lite_pool(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """An existing Lite-plan pool (no resource binding), SAML by default, closed registration, prod."""
    return _synth(
        tmp_path_factory.mktemp("cdk-lite-pool"),
        {
            "kit:stageName": "prod",
            "kit:existingUserPool": {
                "userPoolId": "eu-west-1_Lite42",
                "domainUrl": "https://login.example.com",
                "resourceBinding": False,
            },
            "kit:identityProviders": ["CorpSAML"],
            "kit:defaultIdentityProvider": "CorpSAML",
            "kit:registrationPolicy": "closed",
            "kit:scopeGroupCeilings": {"notes:write": ["mcp-writers"]},
        },
    )
