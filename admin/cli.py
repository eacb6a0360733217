"""``mcp-kit-admin``: list and revoke grants, manage clients, disable users (README, "Admin CLI").

Exit codes (scripts may rely on them):

==  ==========================================================================
0   done
2   usage error (unknown command, missing or conflicting options)
3   not found (no such user, client or grant; no such stack; make dev not running)
4   AWS failure (DynamoDB, Cognito, KMS, CloudFormation; credentials): safe to retry
5   refused (invalid client metadata, a name that matches several users, or a command needing
    a grants-table index the stack has not created yet: kit:grantIndexes); nothing changed
==  ==========================================================================

Every revocation goes through the kit's one ``GrantRevoker`` (grant, refresh-token chain,
Cognito's refresh token) with ``actor=admin``, and writes the same audit event as the
functions; nothing secret is printed except a new client's secret, once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TextIO

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_AWS: Final = 4
EXIT_REFUSED: Final = 5


class NotFound(Exception):
    """What the command names does not exist (exit 3)."""


class Refused(Exception):
    """The request is well-formed but cannot be carried out as asked (exit 5)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-kit-admin", description="Operate an mcp-cognito-kit deployment.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (CloudFormation outputs, your credentials)")
    where.add_argument("--local", action="store_true", help="the running `make dev`")
    parser.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    topics = parser.add_subparsers(dest="topic", required=True)

    grants = topics.add_parser("grants", help="agents' access, by user or by client").add_subparsers(
        dest="action", required=True
    )
    for action, text in (("list", "list active grants"), ("revoke", "revoke grants and forget their consents")):
        sub = grants.add_parser(action, help=text)
        which = sub.add_mutually_exclusive_group(required=True)
        which.add_argument("--user", metavar="USER", help="username, email or sub")
        which.add_argument("--client", metavar="CLIENT_ID")
        if action == "revoke":
            which.add_argument("--grant", metavar="GRANT_ID")

    users = topics.add_parser("users", help="Cognito users").add_subparsers(dest="action", required=True)
    disable = users.add_parser("disable", help="disable the user in Cognito and revoke every grant")
    disable.add_argument("user", metavar="USER", help="username, email or sub")

    clients = topics.add_parser("clients", help="registered OAuth clients").add_subparsers(dest="action", required=True)
    clients.add_parser("list", help="list registered clients")
    for action, text in (("show", "show one client"), ("delete", "delete a client and revoke its grants")):
        clients.add_parser(action, help=text).add_argument("client_id", metavar="CLIENT_ID")
    register = clients.add_parser("register", help="register a confidential client (prints its secret once)")
    register.add_argument("--name", required=True, help="client_name shown on the consent page")
    register.add_argument("--redirect-uri", required=True, action="append", dest="redirect_uris", metavar="URI")
    register.add_argument("--scope", help="space-separated scopes the client may ask for")
    register.add_argument(
        "--auth-method", choices=("client_secret_basic", "client_secret_post"), default="client_secret_basic"
    )
    return parser


# Options whose value is an id; client ids are base64url (RFC 7591 section 3.2.1 leaves their
# form to the server) and may begin with "-", which argparse would read as an option.
_ID_OPTIONS: Final = ("--client", "--grant", "--user")


def _dash_values(argv: list[str]) -> list[str]:
    """``argv`` with ids that begin with "-" made unambiguous for argparse.

    After an id option the value is joined to it (``--client=-x``); a positional id (``clients
    show -x``, ``users disable -x``) moves after a final ``--``. ``-h``/``--help`` and the
    parser's own options are left as they are.
    """
    known = {"-h", "--help", "--stack", "--local", "--region", "--json", "--name", "--redirect-uri", "--scope"}
    known |= {"--auth-method", *_ID_OPTIONS}
    out: list[str] = []
    positional: list[str] = []
    for token in argv:
        if out and out[-1] in _ID_OPTIONS and token.startswith("-"):
            out[-1] = f"{out[-1]}={token}"
        elif token.startswith("-") and token.split("=", 1)[0] not in known:
            positional.append(token)
        else:
            out.append(token)
    return [*out, "--", *positional] if positional else out


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; returns the exit code (module docstring)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from admin.target import TargetNotFound
    from functions.core.platform.errors import DependencyError
    from functions.core.state.grant_index import IndexNotDeployed

    stdout = out or sys.stdout
    _audit_to_stderr()
    parser = build_parser()
    try:
        args = parser.parse_args(_dash_values(list(sys.argv[1:] if argv is None else argv)))
    except SystemExit as exc:  # argparse exits 2 on a usage error, 0 on --help
        return int(exc.code or 0)
    try:
        result, render = _dispatch(args)
    except (NotFound, TargetNotFound) as exc:
        print(f"not found: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (Refused, IndexNotDeployed) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (DependencyError, ClientError, BotoCoreError) as exc:
        print(f"AWS failure (safe to retry): {exc}", file=sys.stderr)
        return EXIT_AWS
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True), file=stdout)
    else:
        print(render(result), file=stdout)
    return EXIT_OK


Render = Callable[[Any], str]


def _audit_to_stderr() -> None:
    """The kit's log lines (audit events of the revocations) go to stderr: stdout is the answer (``--json``)."""
    import logging

    from functions.core.platform.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    # What wrote the lines (the functions' lines carry their function's name here).
    logger.append_keys(service="mcp-kit-admin")


def _dispatch(args: argparse.Namespace) -> tuple[Any, Render]:
    from admin import commands
    from admin.target import use_local, use_stack

    env = use_local() if args.local else use_stack(args.stack, args.region)
    kit = commands.Kit.from_environment(env)
    if args.topic == "grants":
        if args.action == "list":
            rows = kit.list_grants(user=args.user, client_id=args.client)
            return rows, lambda r: table(r, GRANT_COLUMNS) if r else "no active grants"
        done = kit.revoke(user=args.user, client_id=args.client, grant_id=args.grant)
        return (
            done,
            lambda d: f"revoked {len(d['revoked'])} grant(s); consents forgotten: {_cell(d['consents_forgotten'])}",
        )
    if args.topic == "users":
        done = kit.disable_user(args.user)
        return done, lambda d: f"disabled {d['username']}; revoked {len(d['revoked'])} grant(s)"
    if args.action == "list":
        rows = kit.list_clients()
        return rows, lambda r: table(r, CLIENT_COLUMNS) if r else "no registered clients"
    if args.action == "show":
        return kit.show_client(args.client_id), lambda c: "\n".join(f"{k:<28} {_cell(v)}" for k, v in c.items())
    if args.action == "delete":
        done = kit.delete_client(args.client_id)
        return done, lambda d: f"deleted {d['client_id']}; revoked {len(d['revoked'])} grant(s)"
    issued = kit.register_client(
        name=args.name, redirect_uris=args.redirect_uris, scope=args.scope, auth_method=args.auth_method
    )
    return (
        issued,
        lambda i: (
            f"client_id      {i['client_id']}\nclient_secret  {i['client_secret']}\n"
            "The secret is shown only now: store it in the client's configuration."
        ),
    )


GRANT_COLUMNS: Final = ("grant_id", "agent", "client_id", "user", "scopes", "granted", "last_used", "expires")
CLIENT_COLUMNS: Final = ("client_id", "client_name", "auth_method", "redirect_uris", "issued", "last_used")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (one line each) under a header of ``columns``."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value) or "-"
    if isinstance(value, int) and value > 1_000_000_000:  # epoch seconds
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(value))
    return str(value)
