"""mcp-kit-admin reads ids that begin with "-" (base64url client ids) as ids, not as options."""

from __future__ import annotations

import pytest

from admin.cli import _dash_values, build_parser


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--local", "clients", "show", "-vPQWvJyzb5i50UQyYYmQQ"], "client_id", "-vPQWvJyzb5i50UQyYYmQQ"),
        (["--json", "--local", "clients", "delete", "-x1"], "client_id", "-x1"),
        (["--local", "grants", "revoke", "--client", "-abc"], "client", "-abc"),
        (["--local", "grants", "list", "--client", "--x"], "client", "--x"),
        (["--local", "grants", "revoke", "--grant", "-g"], "grant", "-g"),
        (["--local", "users", "disable", "-sub"], "user", "-sub"),
    ],
)
def test_an_id_beginning_with_a_dash_is_read_as_the_id(argv: list[str], field: str, value: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)  # what argparse alone makes of it: a usage error
    args = build_parser().parse_args(_dash_values(argv))
    assert getattr(args, field) == value


def test_options_stay_options() -> None:
    argv = ["--json", "--local", "clients", "register", "--name", "n", "--redirect-uri", "https://a.example/cb"]
    assert _dash_values(argv) == argv
    args = build_parser().parse_args(_dash_values(argv))
    assert args.json and args.local and args.redirect_uris == ["https://a.example/cb"]
