"""`mcp-kit-admin --stack NAME` against moto: the stack's CloudFormation outputs, then clients, grants, users."""

from __future__ import annotations

import io
import json
import tomllib
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from admin.cli import EXIT_AWS, EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from admin.commands import Kit
from admin.target import GRANT_INDEXES_OUTPUT, STACK_OUTPUTS
from functions.core.platform.errors import DependencyError
from functions.core.platform.settings import Env
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.reconciliation import Reconciled
from local.config import GRANTS_TABLE, REGION
from tests.helpers import grant
from tests.integration.conftest import MotoStack

REPO = Path(__file__).resolve().parents[2]


def fake_stack(moto_stack: MotoStack, grant_indexes: list[str] | None = None, **values: str) -> str:
    """A CloudFormation stack in moto whose outputs are those of a deployed kit (infra/stack.py).

    ``grant_indexes``: its ``GrantIndexes`` output (None: no such output); ``values``
    replace outputs by key.
    """
    name = f"kit-{uuid.uuid4().hex[:8]}"
    outputs = {key: {"Value": moto_stack.env[var]} for key, var in STACK_OUTPUTS.items()}
    outputs |= {key: {"Value": value} for key, value in values.items()}
    if grant_indexes is not None:
        outputs[GRANT_INDEXES_OUTPUT] = {"Value": json.dumps(grant_indexes)}
    template = {"Resources": {"Marker": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.fixture(scope="module")
def stack_name(moto_stack: MotoStack) -> str:
    """A deployed kit with both grants-table indexes (the default kit:grantIndexes)."""
    return fake_stack(moto_stack, ["by_user", "by_client"])


def run(stack_name: str, *args: str) -> tuple[int, Any]:
    out = io.StringIO()
    code = main(["--stack", stack_name, "--region", REGION, "--json", *args], out=out)
    return code, json.loads(out.getvalue()) if code == EXIT_OK else None


def test_a_client_registered_by_hand_is_one_audit_event_by_the_admin(
    stack_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.core.platform.observability import logger

    # The CLI points the kit's log handler at this test's stderr: the next tests get theirs back.
    monkeypatch.setattr(logger.registered_handler, "stream", logger.registered_handler.stream)
    capsys.readouterr()
    try:
        code, issued = run(
            stack_name, "clients", "register", "--name", "Audited", "--redirect-uri", "https://a.example/cb"
        )
    finally:
        logger.append_keys(service=logger.service)  # and their service key
    assert code == EXIT_OK
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    events = [(line["service"], line["audit"]) for line in lines if "audit" in line]
    assert [(service, e["action"], e["actor"], e["client_id"]) for service, e in events] == [
        ("mcp-kit-admin", "client.registered", "admin", issued["client_id"])
    ]


def test_a_client_registered_by_hand_is_listed_shown_and_deleted_with_its_grants(stack_name: str) -> None:
    code, issued = run(
        stack_name, "clients", "register", "--name", "Ops agent", "--redirect-uri", "https://ops.example.com/cb"
    )
    assert code == EXIT_OK and issued["client_secret"]
    client_id = issued["client_id"]
    _, listed = run(stack_name, "clients", "list")
    assert client_id in [c["client_id"] for c in listed]
    _, shown = run(stack_name, "clients", "show", client_id)
    assert shown["client_name"] == "Ops agent" and shown["auth_method"] == "client_secret_basic"
    assert issued["client_secret"] not in json.dumps(shown) and "hash" not in json.dumps(shown)

    grants = DynamoGrantRepository(GRANTS_TABLE)
    grant_id = f"origin-{uuid.uuid4().hex[:8]}"
    grants.create(grant(grant_id, f"sub-{uuid.uuid4().hex[:6]}", client_id=client_id, username="someone"))
    _, rows = run(stack_name, "grants", "list", "--client", client_id)
    assert [(r["grant_id"], r["agent"]) for r in rows] == [(grant_id, "Ops agent (unverified)")]

    code, deleted = run(stack_name, "clients", "delete", client_id)
    assert code == EXIT_OK and deleted["revoked"] == [grant_id]
    stored = grants.get(grant_id)
    assert stored is not None and stored.status == "revoked" and stored.revoked_reason == "client_deleted"
    assert run(stack_name, "clients", "show", client_id)[0] == EXIT_NOT_FOUND


def test_a_failed_client_delete_is_finished_by_its_retry(stack_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Exit 4 promises "safe to retry". The client used to be deleted before its grants were
    # revoked: when a revocation failed, the retry found no client (exit 3) and the grants
    # stayed active.
    code, issued = run(stack_name, "clients", "register", "--name", "Doomed", "--redirect-uri", "https://d.example/cb")
    assert code == EXIT_OK
    client_id = issued["client_id"]
    grants = DynamoGrantRepository(GRANTS_TABLE)
    grant_id = f"origin-{uuid.uuid4().hex[:8]}"
    grants.create(grant(grant_id, f"sub-{uuid.uuid4().hex[:6]}", client_id=client_id, username="someone"))
    real = GrantAdministration.revoke_client

    def failing(self: GrantAdministration, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(GrantAdministration, "revoke_client", real)  # fails once
        raise DependencyError("revoke grant failed: ThrottlingException")

    monkeypatch.setattr(GrantAdministration, "revoke_client", failing)
    assert run(stack_name, "clients", "delete", client_id)[0] == EXIT_AWS
    code, deleted = run(stack_name, "clients", "delete", client_id)
    assert code == EXIT_OK and deleted["revoked"] == [grant_id]
    stored = grants.get(grant_id)
    assert stored is not None and stored.status == "revoked"
    assert run(stack_name, "clients", "show", client_id)[0] == EXIT_NOT_FOUND


def test_grant_listings_prefer_the_name_the_grant_recorded(stack_name: str) -> None:
    grants = DynamoGrantRepository(GRANTS_TABLE)
    sub = f"sub-{uuid.uuid4().hex[:6]}"
    named, old = (f"origin-{uuid.uuid4().hex[:8]}" for _ in range(2))
    # No registration behind either client: the recorded name needs no lookup.
    grants.create(grant(named, sub, client_id="agent-recorded", client_name="Claude Desktop"))
    grants.create(grant(old, sub, client_id="agent-unrecorded"))  # schema version 2: no name
    _, rows = run(stack_name, "grants", "list", "--user", sub)
    agents = {r["grant_id"]: r["agent"] for r in rows}
    assert agents == {named: "Claude Desktop (unverified)", old: "(client deleted)"}


def test_revoke_one_grant_and_every_grant_of_a_client(stack_name: str) -> None:
    grants = DynamoGrantRepository(GRANTS_TABLE)
    client_id = f"agent-{uuid.uuid4().hex[:8]}"
    first, second = (f"origin-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for grant_id in (first, second):
        grants.create(grant(grant_id, f"sub-{uuid.uuid4().hex[:6]}", client_id=client_id))
    code, done = run(stack_name, "grants", "revoke", "--grant", first)
    assert code == EXIT_OK and done["revoked"] == [first]
    code, done = run(stack_name, "grants", "revoke", "--client", client_id)
    assert code == EXIT_OK and done["revoked"] == [second]
    assert run(stack_name, "grants", "revoke", "--grant", "origin-unknown")[0] == EXIT_NOT_FOUND


def test_users_disable_disables_in_cognito_and_revokes(stack_name: str, moto_stack: MotoStack) -> None:
    idp = boto3.client("cognito-idp", region_name=REGION)
    pool = moto_stack.seeded.user_pool_id
    email = f"dave-{uuid.uuid4().hex[:6]}@example.com"
    created = idp.admin_create_user(
        UserPoolId=pool, Username=email, UserAttributes=[{"Name": "email", "Value": email}], MessageAction="SUPPRESS"
    )
    sub = next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")
    grant_id = f"origin-{uuid.uuid4().hex[:8]}"
    DynamoGrantRepository(GRANTS_TABLE).create(grant(grant_id, sub, username=email, email=email))
    _, rows = run(stack_name, "grants", "list", "--user", sub)  # by sub as well as by email
    assert [r["grant_id"] for r in rows] == [grant_id]

    code, done = run(stack_name, "users", "disable", email)

    assert code == EXIT_OK and done["revoked"] == [grant_id]
    assert idp.admin_get_user(UserPoolId=pool, Username=email)["Enabled"] is False
    stored = DynamoGrantRepository(GRANTS_TABLE).get(grant_id)
    assert stored is not None and stored.revoked_reason == "user_disabled"
    assert run(stack_name, "users", "disable", "nobody@example.com")[0] == EXIT_NOT_FOUND


def test_invalid_metadata_is_refused_and_closed_registration_still_lets_the_operator_in(
    stack_name: str, moto_stack: MotoStack
) -> None:
    code, _ = run(stack_name, "clients", "register", "--name", "x", "--redirect-uri", "http://evil.example.com/cb")
    assert code == EXIT_REFUSED
    kit = Kit.from_environment({**moto_stack.env, Env.REGISTRATION_POLICY: "closed"})
    issued = kit.register_client(
        name="Closed door", redirect_uris=["https://in.example.com/cb"], scope=None, auth_method="client_secret_post"
    )
    assert issued["client_secret"] and kit.show_client(issued["client_id"])["client_name"] == "Closed door"


def test_exit_codes_for_a_missing_stack_usage_and_aws_failure(moto_stack: MotoStack, stack_name: str) -> None:
    assert main(["--stack", "no-such-stack", "--region", REGION, "clients", "list"], out=io.StringIO()) == (
        EXIT_NOT_FOUND
    )
    assert main(["--stack", stack_name, "grants", "list"], out=io.StringIO()) == EXIT_USAGE
    assert main(["grants", "list", "--user", "x"], out=io.StringIO()) == EXIT_USAGE  # --stack or --local
    # A stack whose grants table is gone: DynamoDB fails, the CLI says so with its own code.
    broken = fake_stack(moto_stack, ["by_user", "by_client"], GrantsTableName="no-such-table")
    assert run(broken, "grants", "list", "--client", "agent-1")[0] == EXIT_AWS


def test_commands_needing_an_index_the_stack_lacks_refuse_and_change_nothing(moto_stack: MotoStack) -> None:
    # Mid-upgrade (kit:grantIndexes=by_user): the client commands refuse, the user commands work.
    halfway = fake_stack(moto_stack, ["by_user"])
    grants = DynamoGrantRepository(GRANTS_TABLE)
    client_id = f"agent-{uuid.uuid4().hex[:8]}"
    grant_id = f"origin-{uuid.uuid4().hex[:8]}"
    sub = f"sub-{uuid.uuid4().hex[:6]}"
    grants.create(grant(grant_id, sub, client_id=client_id))
    assert run(halfway, "grants", "list", "--client", client_id)[0] == EXIT_REFUSED
    assert run(halfway, "grants", "revoke", "--client", client_id)[0] == EXIT_REFUSED
    stored = grants.get(grant_id)
    assert stored is not None and stored.status == "active"
    code, rows = run(halfway, "grants", "list", "--user", sub)
    assert code == EXIT_OK and [r["grant_id"] for r in rows] == [grant_id]

    code, issued = run(halfway, "clients", "register", "--name", "Kept", "--redirect-uri", "https://k.example.com/cb")
    assert code == EXIT_OK
    # clients delete would leave the client's grants behind: refused before the record goes.
    assert run(halfway, "clients", "delete", issued["client_id"])[0] == EXIT_REFUSED
    assert run(halfway, "clients", "show", issued["client_id"])[0] == EXIT_OK


def test_without_by_user_users_disable_refuses_before_disabling(moto_stack: MotoStack) -> None:
    idp = boto3.client("cognito-idp", region_name=REGION)
    pool = moto_stack.seeded.user_pool_id
    email = f"erin-{uuid.uuid4().hex[:6]}@example.com"
    idp.admin_create_user(
        UserPoolId=pool, Username=email, UserAttributes=[{"Name": "email", "Value": email}], MessageAction="SUPPRESS"
    )
    # No GrantIndexes output at all: the CLI assumes no index (fail closed).
    for target in (fake_stack(moto_stack, ["by_client"]), fake_stack(moto_stack, None)):
        assert run(target, "users", "disable", email)[0] == EXIT_REFUSED
        assert run(target, "grants", "list", "--user", email)[0] == EXIT_REFUSED
        assert idp.admin_get_user(UserPoolId=pool, Username=email)["Enabled"] is True


def test_human_output_is_a_table(stack_name: str) -> None:
    out = io.StringIO()
    assert main(["--stack", stack_name, "--region", REGION, "clients", "list"], out=out) == EXIT_OK
    header = out.getvalue().splitlines()[0]
    assert header.split()[:3] == ["CLIENT_ID", "CLIENT_NAME", "AUTH_METHOD"]


def test_the_console_script_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["mcp-kit-admin"] == "admin.cli:main"


def test_the_deprovisioning_handler_routes_events_and_schedules(moto_stack: MotoStack) -> None:
    from functions.deprovisioning.handler import dispatch

    calls: list[Any] = []
    deprovisioner = SimpleNamespace(
        handle_event=lambda detail: calls.append(("event", detail)) or Reconciled(users=1),
        reconcile_all=lambda: calls.append(("all", None)) or Reconciled(users=2),
    )
    plane: Any = SimpleNamespace(deprovisioner=deprovisioner)
    detail = {"eventName": "AdminDisableUser"}
    trail = {"source": "aws.cognito-idp", "detail-type": "AWS API Call via CloudTrail", "detail": detail}
    assert dispatch(trail, plane).users == 1
    assert dispatch({"source": "aws.events", "detail-type": "Scheduled Event"}, plane).users == 2
    # A look-alike from another source changes nothing.
    assert dispatch({**trail, "source": "custom.app"}, plane).users == 0
    assert calls == [("event", detail), ("all", None)]


def test_the_deprovisioning_handler_logs_a_missing_index_and_fails(
    moto_stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.deprovisioning.handler as deprovisioning
    from functions.core.platform.observability import logger
    from functions.core.state.grant_index import IndexNotDeployed
    from tests.helpers import FakeContext

    def missing() -> Reconciled:
        raise IndexNotDeployed("by_user")

    plane: Any = SimpleNamespace(deprovisioner=SimpleNamespace(reconcile_all=missing))
    monkeypatch.setattr(deprovisioning, "_plane", lambda: plane)
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    with pytest.raises(IndexNotDeployed):  # the invocation fails: EventBridge retries, the errors alarm fires
        deprovisioning.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, FakeContext())
    (line,) = [json.loads(x) for x in log.getvalue().splitlines() if "deprovisioning cannot run" in x]
    assert line["level"] == "ERROR" and "by_user" in line["detail"] and "kit:grantIndexes" in line["detail"]
