"""README "Bring your own MCP server", followed step by step with a throwaway app.

The app's two files are read from the README itself, written to a temporary folder outside
the kit's folders, and named by ``KIT_APP_PATH`` (the README's override of ``kit:app``). Then:
`make synth` (``python app.py``) puts the new scope in the template's resource server and the
tools into the MCP function's asset only; `make dev` (``python -m local``) serves the scope in
the metadata, on the consent page and the tool on /mcp.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx
import pytest

from functions.core.platform.kit_app import APP_PATH_ENV
from tests.e2e.conftest import PASSWORD, RunningStack, _run_stack
from tests.e2e.oauth_harness import Browser
from tests.e2e.test_local_stack import Agent

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SCOPE, DESCRIPTION = "hello:greet", "Greet people in your name"
REDIRECT = "http://127.0.0.1:9/callback"


def readme_files() -> dict[str, str]:
    """``<!-- byo-file: NAME -->`` followed by a fenced block, in the README's BYO section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = dict(re.findall(r"<!-- byo-file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S))
    assert set(found) == {"app.json", "server.py"}, found.keys()
    return found


def write_app(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    assert not folder.resolve().is_relative_to(REPO), "the app must live outside the kit's folders"
    return folder


@pytest.fixture(scope="module")
def byo_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app(tmp_path_factory.mktemp("byo") / "my-app", readme_files())


def synth(app: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    """What `make synth` runs, with the README's override."""
    env = {**os.environ, APP_PATH_ENV: str(app), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_synthesized_template_has_the_new_scope_and_only_the_mcp_asset_has_the_tools(
    byo_app: Path, tmp_path: Path
) -> None:
    done = synth(byo_app, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    template = json.loads((tmp_path / "McpCognitoKit-dev.template.json").read_text())
    (server,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Cognito::UserPoolResourceServer"]
    assert server["Properties"]["Scopes"] == [{"ScopeName": SCOPE, "ScopeDescription": DESCRIPTION}]
    kit_entries = ("__init__.py", "__pycache__", "core")
    assets = {
        next(p.name for p in (asset / "functions").iterdir() if p.name not in kit_entries): asset
        for asset in tmp_path.glob("asset.*")
        if (asset / "functions").is_dir()
    }
    assert (assets["mcp_server"] / "kit_app" / "server.py").read_text() == (byo_app / "server.py").read_text()
    for name in ("metadata", "registration", "authorization", "token"):
        assert sorted(p.name for p in (assets[name] / "kit_app").iterdir()) == ["app.json"], name


def test_a_tool_naming_a_scope_missing_from_app_json_fails_the_synth(tmp_path: Path) -> None:
    files = readme_files()
    files["server.py"] = files["server.py"].replace('scopes=("hello:greet",)', 'scopes=("hello:wave",)')
    done = synth(write_app(tmp_path / "bad-app", files), tmp_path / "out")
    assert done.returncode != 0
    assert "tool 'greet' requires scope(s) ['hello:wave'] missing from" in done.stderr
    assert not (tmp_path / "out" / "McpCognitoKit-dev.template.json").exists()


@pytest.fixture(scope="module")
def byo_stack(byo_app: Path, tls_files: tuple[Path, Path]) -> Iterator[RunningStack]:
    yield from _run_stack(tls_files, {APP_PATH_ENV: str(byo_app)})


def test_make_dev_serves_the_scope_in_the_metadata(byo_stack: RunningStack) -> None:
    base = byo_stack.cfg.base_url
    assert httpx.get(base + "/.well-known/oauth-protected-resource/mcp").json()["scopes_supported"] == [SCOPE]
    assert httpx.get(base + "/.well-known/oauth-authorization-server").json()["scopes_supported"] == [SCOPE]
    assert f'scope="{SCOPE}"' in httpx.post(base + "/mcp").headers["www-authenticate"]


def test_make_dev_shows_the_scope_on_the_consent_page(byo_stack: RunningStack) -> None:
    base = byo_stack.cfg.base_url
    client = httpx.post(
        base + "/register",
        json={"client_name": "BYO agent", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
    ).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s1",
        "scope": SCOPE,
        "resource": base + "/mcp",
    }
    browser = Browser("alice@example.com", PASSWORD)

    async def flow() -> dict[str, list[str]]:
        try:
            return await browser.run(f"{base}/authorize?{urlencode(query)}", REDIRECT)
        finally:
            await browser.aclose()

    answer = anyio.run(flow)
    assert answer["state"] == ["s1"] and answer["code"]
    (page,) = browser.consent_pages
    assert f"<code>{SCOPE}</code>: {DESCRIPTION}" in page


def test_make_dev_serves_the_tool(byo_stack: RunningStack) -> None:
    agent = Agent(byo_stack, "alice@example.com", [SCOPE])
    assert agent.tools() == {"greet"}
    result = agent.call("greet", {"name": "Ada"}).json()["result"]
    assert result["structuredContent"] == {"result": "Hello Ada, from alice@example.com"}
    assert agent.call("greet", {"name": " "}).json()["result"]["isError"] is True
