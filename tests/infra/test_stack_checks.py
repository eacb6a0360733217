"""The template's checks: cdk-nag, cfn-lint, asset contents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.packaging import asset_budget, tree_size
from tests.infra.conftest import Synth
from tests.infra.template import (
    function_ids,
)

pytestmark = pytest.mark.infra


# --- checks: cdk-nag, cfn-lint, assets -------------------------------------------------------

EXPECTED_ACKNOWLEDGEMENTS = {
    # rule id -> why it is acknowledged (the reason text itself lives next to the construct)
    "AwsSolutions-IAM5[Resource::*]",  # X-Ray actions, one per function role
    "AwsSolutions-APIG4",  # public OAuth/discovery routes; /mcp authorizes in the function
    "AwsSolutions-COG2",  # MFA optional by default (kit:mfa=required turns it on)
    "AwsSolutions-COG8",  # Essentials plan by default (kit:threatProtection switches to Plus)
    "AwsSolutions-L1",  # Python 3.13: the newest runtime the build can compile bytecode for
    "AwsSolutions-S1",  # the CloudTrail log bucket: CloudTrail writes it, no server access log bucket
    # CDK's own warning: SnapStart needs published versions, which the alias provides.
    "Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
}


def _acknowledgements(app: Any) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every Validations acknowledgement in the app."""
    import aws_cdk as cdk

    from infra.nag import PLUGIN

    found = []
    for node in app.node.find_all():
        for entry in node.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    # cdk-nag rules carry the plugin prefix; CDK warnings are "Annotation::<id>".
                    found.append((node.node.path, rule.removeprefix(PLUGIN + "::"), reason))
    return found


def test_cdk_nag_zero_unacknowledged_errors(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert [v for v in violations if v.get("severity") == "error"] == []


def test_every_acknowledgement_states_its_reason(synth: Synth) -> None:
    acks = _acknowledgements(synth.app)
    assert acks, "expected acknowledgement metadata"
    assert {rule for _, rule, _ in acks} == EXPECTED_ACKNOWLEDGEMENTS
    for path, rule, reason in acks:
        assert isinstance(reason, str), (path, rule)
        assert len(reason) > 30, (path, rule)


def test_production_variant_needs_fewer_acknowledgements(synth_custom: Synth) -> None:
    rules = {rule for _, rule, _ in _acknowledgements(synth_custom.app)}
    assert rules == EXPECTED_ACKNOWLEDGEMENTS - {"AwsSolutions-COG2", "AwsSolutions-COG8"}


def test_cfn_lint_zero_errors(synth: Synth, synth_custom: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    for s in (synth, synth_custom):
        matches = lint_file(
            s.outdir / f"{s.stack.stack_name}.template.json", ManualArgs(regions=["us-east-1", "eu-west-1"])
        )
        errors = [str(m) for m in matches if m.rule.id.startswith("E")]
        assert errors == []


def _asset_dirs(s: Synth) -> dict[str, Path]:
    fn_ids = function_ids(s)
    out = {}
    for name, lid in fn_ids.items():
        key = s.template_json["Resources"][lid]["Properties"]["Code"]["S3Key"]
        out[name] = s.outdir / f"asset.{key.removesuffix('.zip')}"
    return out


def test_assets_hold_only_their_function(synth: Synth) -> None:
    dirs = _asset_dirs(synth)
    assert len(set(dirs.values())) == len(dirs), "each function has its own asset"
    for name, root in dirs.items():
        code = sorted(p.name for p in (root / "functions").iterdir() if p.name != "__pycache__")
        assert code == sorted(["__init__.py", "core", name])
        top = {p.name for p in root.iterdir()}
        assert not {"boto3", "botocore", "s3transfer", "bin"} & top, "the Lambda runtime provides boto3"
        # Bytecode of the runtime's version only: the kit's and the app's code beside their sources,
        # the rest sourceless.
        assert {p.name.split(".")[-2] for p in root.rglob("__pycache__/*.pyc")} == {"cpython-313"}
        own = (root / "functions", root / "kit_app")
        assert all(p.parent.name == "__pycache__" for d in own for p in d.rglob("*.pyc"))
        assert not [p for p in root.rglob("*.py") if not p.is_relative_to(own[0]) and not p.is_relative_to(own[1])]
        # The app: all of it in the MCP function (without its tests), only its catalogue elsewhere.
        shipped = sorted(p.name for p in (root / "kit_app").iterdir() if p.name != "__pycache__")
        assert shipped == (["app.json", "server.py", "store.py"] if name == "mcp_server" else ["app.json"]), name
        assert not [p for p in root.rglob("tests") if p.is_dir()]
        for dist in root.glob("*.dist-info"):
            assert not (dist / "RECORD").exists()
        size, _ = tree_size(root)
        assert size <= asset_budget(name), f"{name}: {size / 1e6:.1f} MB"
    assert (dirs["mcp_server"] / "mcp").is_dir()
    assert not (dirs["metadata"] / "mcp").exists(), "metadata does not ship the MCP SDK"
    assert not (dirs["metadata"] / "jose").exists()
