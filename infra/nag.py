"""cdk-nag 3 (AwsSolutions pack) through CDK's Validations API, and the one way to acknowledge.

Every acknowledgement names a rule (or one finding of it, ``AwsSolutions-IAM5[Resource::*]``)
and states its reason next to the construct it concerns.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def add_nag_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack at synth; any unacknowledged error fails synthesis."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule_id}: give a real reason for acknowledging the finding")
    # "<plugin>::<rule>" is the id cdk-nag prints ("Acknowledge with ..."); a bare id would be
    # recorded as an annotation acknowledgement ("Annotation::...").
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{PLUGIN}::{rule_id}", reason=reason))


def acknowledge_warning(construct: IConstruct, warning_id: str, reason: str) -> None:
    """Acknowledge a CDK construct warning (an annotation, not a cdk-nag rule)."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{warning_id}: give a real reason for acknowledging the warning")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=warning_id, reason=reason))
