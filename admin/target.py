"""Which kit the CLI talks to: a deployed stack (CloudFormation outputs) or ``make dev``.

Either way the result is the environment the kit's functions get (``Env`` names), so the CLI
builds the same repositories, revoker and directory as the functions do.

* ``--stack NAME``: ``DescribeStacks`` with the caller's AWS credentials and region; the
  stack's outputs name the pool, gateway client, Cognito domain, KMS key, tables and the
  grants-table indexes it created (``GrantIndexes``; absent = none).
* ``--local``: the state file the running ``make dev`` writes (``local.state_file``), with
  moto's endpoint and moto's dummy credentials; never real ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

from functions.core.platform.settings import Env
from functions.core.platform.topology import GRANT_INDEX_NAMES

# Stack output -> environment variable (infra/stack.py, KitStack._outputs).
STACK_OUTPUTS: Final[Mapping[str, str]] = {
    "Issuer": Env.BASE_URL,
    "UserPoolId": Env.USER_POOL_ID,
    "GatewayClientId": Env.GATEWAY_CLIENT_ID,
    "ManagedLoginUrl": Env.COGNITO_DOMAIN_URL,
    "KmsKeyArn": Env.KMS_KEY_ID,
    "GrantsTableName": Env.GRANTS_TABLE,
    "ClientsTableName": Env.CLIENTS_TABLE,
    "ArtefactsTableName": Env.ARTEFACTS_TABLE,
}


# The grants-table indexes the stack created (kit:grantIndexes), as a JSON list.
GRANT_INDEXES_OUTPUT: Final = "GrantIndexes"


class TargetNotFound(Exception):
    """The stack does not exist, lacks an output, or ``make dev`` is not running."""


def stack_environment(stack_name: str, cloudformation: Any, region: str) -> dict[str, str]:
    """The functions' environment from the outputs of ``stack_name``.

    Raises ``TargetNotFound`` when the stack or one of :data:`STACK_OUTPUTS` is missing;
    AWS failures propagate as botocore exceptions.
    """
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            raise TargetNotFound(f"no stack {stack_name!r} in {region}") from exc
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise TargetNotFound(f"stack {stack_name!r} has no outputs {missing}: is it an mcp-cognito-kit stack?")
    env = {var: outputs[key] for key, var in STACK_OUTPUTS.items()} | {Env.REGION: region}
    env[Env.GRANT_INDEXES] = ",".join(grant_indexes_output(outputs.get(GRANT_INDEXES_OUTPUT)))
    return env


def grant_indexes_output(value: str | None) -> list[str]:
    """The index names of the ``GrantIndexes`` output (a JSON list); none when it is absent or malformed.

    Fail closed: a stack that does not say which indexes it has is treated as having none, so
    a command that needs one refuses instead of querying an index that may not exist.
    """
    try:
        names = json.loads(value) if value else []
    except ValueError:
        return []
    return [n for n in GRANT_INDEX_NAMES if n in names] if isinstance(names, list) else []


def use_stack(stack_name: str, region: str | None) -> dict[str, str]:
    """Point this process at a deployed stack; returns its environment (``TargetNotFound``)."""
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise TargetNotFound("no AWS region: pass --region or set AWS_REGION")
    os.environ.setdefault("AWS_DEFAULT_REGION", session.region_name)
    env = stack_environment(stack_name, session.client("cloudformation"), session.region_name)
    _select_app()
    return env


def use_local() -> dict[str, str]:
    """Point this process at the running ``make dev`` (moto); returns its environment."""
    from local.config import FAKE_CREDENTIALS, REGION
    from local.state_file import read_state, state_path

    state = read_state()
    if state is None:
        raise TargetNotFound(f"make dev is not running (no {state_path()})")
    environment, endpoint = state
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_ENDPOINT_URL=endpoint)
    os.environ.update(environment)
    _select_app()
    return environment


def _select_app() -> None:
    # The scope catalogue (names the settings validate against) is the app of cdk.json's kit:app.
    from local.config import select_app

    select_app()
