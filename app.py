#!/usr/bin/env python3
"""CDK entry point (cdk.json: ``"app": "python app.py"``).

Environment-agnostic: no account or region is resolved here, and nothing calls AWS, Docker or
git, so ``cdk synth`` (or ``CDK_OUTDIR=cdk.out python app.py``) works offline without
credentials. Lambda assets are bundled locally (infra/packaging.py); their sizes are printed
after synthesis.

Run directly, it takes the CDK CLI's context flags (``make synth CDK_ARGS="-c key=value ..."``)::

    python app.py -c kit:stageName=prod -c 'kit:identityProviders=["COGNITO","CorpSAML"]'
"""

from __future__ import annotations

import os
import sys
import time

import aws_cdk as cdk

from functions.core.platform.kit_app import APP_PATH_ENV, AppError
from functions.mcp_server.app_loader import check_app
from functions.mcp_server.registry import UnknownScopeError
from infra.config import KitConfig, cdk_json_context
from infra.context import ConfigError, parse_context_args
from infra.nag import add_nag_checks
from infra.packaging import BUNDLE_REPORT, format_report
from infra.stack import KitStack


def build_app(
    context: dict[str, object] | None = None, outdir: str | None = None, *, app_path: str | None = None
) -> tuple[cdk.App, KitStack]:
    """The app with cdk.json's context as defaults; ``context`` holds flags (they beat stage entries).

    Under the CDK CLI its ``-c`` flags arrive through ``CDK_CONTEXT_JSON`` and win as well.
    ``app_path`` (``KIT_APP_PATH``) replaces ``kit:app`` from every source, flags included.
    """
    app = cdk.App(
        context={**cdk_json_context(), **(context or {})},
        outdir=outdir,
        post_cli_context={"kit:app": app_path} if app_path else None,
    )
    explicit = frozenset(context or {}) | ({"kit:app"} if app_path else frozenset())
    config = KitConfig.from_scope(app, explicit=explicit)
    try:
        # The app's tools are imported and registered once here, against its catalogue, so a
        # tool naming a scope missing from app.json fails the synth as it would a cold start.
        check_app(config.app)
    except (AppError, UnknownScopeError) as exc:
        raise ConfigError(f"kit:app: {exc}") from None
    stack = KitStack(
        app,
        config.stack_name,
        config=config,
        description="mcp-cognito-kit: remote MCP server on Lambda behind an OAuth 2.1 facade over Amazon Cognito",
    )
    add_nag_checks(app)
    return app, stack


def main(argv: list[str]) -> None:
    started = time.monotonic()
    try:
        # KIT_APP_PATH overrides kit:app here as in `make dev` (README "Bring your own MCP server").
        app, _stack = build_app(
            dict(parse_context_args(argv)), app_path=os.environ.get(APP_PATH_ENV, "").strip() or None
        )
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    assembly = app.synth()
    # stderr: the CDK CLI reads nothing from it, and `cdk synth` prints the template on stdout.
    print(format_report(BUNDLE_REPORT), file=sys.stderr)
    print(f"Synthesized to {assembly.directory} in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
