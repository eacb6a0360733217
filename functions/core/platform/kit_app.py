"""The team's MCP app: where its folder is, and its manifest (scope catalogue and tables).

An app folder (README "Bring your own MCP server") holds:

- ``app.json``: the manifest, plain data, read by every function and by the CDK stack::

      {"scopes": [{"name": "notes:read", "description": "Read your notes",
                   "default": true, "groups": []}, ...],
       "tables": [{"name": "notes", "sortKey": "sk", "ttlAttribute": "ttl",
                   "actions": ["dynamodb:GetItem", ...]}]}

  ``scopes`` (1-100): ``name`` is an RFC 6749 section 3.3 scope-token without ``/`` (Cognito
  custom scope names), ``description`` (1-256 characters) is shown on the consent page and in
  the Cognito resource server, ``default`` (true) says whether a request without a scope asks
  for it, ``groups`` ([]: anyone) are the Cognito groups that may grant it (its ceiling).
  ``tables`` (0-10, optional): DynamoDB tables of the app, partition key ``pk`` (string),
  optional string sort key; ``actions`` defaults to :data:`DEFAULT_TABLE_ACTIONS`.
- ``server.py``: ``register(tools, ctx)`` adds the tools (MCP function only; see
  ``functions.mcp_server.api``).
- ``requirements.txt`` (optional): the app's own runtime dependencies, MCP function only.

This module never imports the MCP SDK or the app's code, so the metadata, registration,
authorization and token functions read the catalogue without them. The folder is found at
run time from ``KIT_APP_PATH`` (``make dev`` and the tests set it), else it is the
``kit_app`` directory next to ``functions/`` (where packaging puts it in each Lambda asset).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

APP_PATH_ENV: Final = "KIT_APP_PATH"
MANIFEST: Final = "app.json"
SERVER_MODULE: Final = "server"
# The package name the app folder is imported as, locally and in the Lambda asset.
PACKAGE: Final = "kit_app"
PACKAGED_DIR: Final = Path(__file__).resolve().parents[3] / PACKAGE

# RFC 6749 section 3.3 scope-token (%x21 / %x23-5B / %x5D-7E) minus "/", which Cognito uses to
# join the resource-server identifier and the scope name.
_SCOPE_RE: Final = re.compile(r"^[\x21\x23-\x2e\x30-\x5b\x5d-\x7e]{1,100}$")
# Scopes the kit asks Cognito for itself, or that clients add on their own: never app scopes.
RESERVED_SCOPES: Final = frozenset(
    {"openid", "email", "profile", "phone", "address", "offline_access", "aws.cognito.signin.user.admin"}
)
_SCOPE_KEYS: Final = frozenset({"name", "description", "default", "groups"})
_TABLE_KEYS: Final = frozenset({"name", "sortKey", "ttlAttribute", "actions"})
_GROUP_RE: Final = re.compile(r"^[^\s]{1,128}$")
_TABLE_RE: Final = re.compile(r"^[a-z][a-z0-9]{0,30}$")
_ATTR_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# The kit's own tables: an app table may not take their names.
KIT_TABLE_NAMES: Final = frozenset({"grants", "clients", "artefacts"})
DEFAULT_TABLE_ACTIONS: Final = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)


class AppError(ValueError):
    """The app folder or its manifest is missing or malformed; the message names where."""


@dataclass(frozen=True)
class ScopeDef:
    """One scope of the app's catalogue (``app.json`` ``scopes``): name, consent text, default, ceiling groups."""

    name: str
    description: str
    # Requested when a client asks for no scope at all (RFC 6749 section 3.3 lets the
    # server apply a documented default).
    default: bool = True
    groups: tuple[str, ...] = ()  # Cognito groups that may grant it; empty: every user


@dataclass(frozen=True)
class AppTable:
    """One DynamoDB table of the app (``app.json`` ``tables``): partition key ``pk``, optional sort key, TTL
    attribute, and the DynamoDB actions the MCP function's role gets on it."""

    name: str
    sort_key: str | None = None
    ttl_attribute: str | None = "ttl"
    actions: tuple[str, ...] = DEFAULT_TABLE_ACTIONS


@dataclass(frozen=True)
class AppManifest:
    """The app's ``app.json``, validated: its folder (``root``), scope catalogue (in order) and tables."""

    root: Path
    scopes: tuple[ScopeDef, ...]
    tables: tuple[AppTable, ...] = ()

    @property
    def scope_names(self) -> tuple[str, ...]:
        """The catalogue's scope names, in manifest order."""
        return tuple(s.name for s in self.scopes)

    @property
    def default_ceilings(self) -> dict[str, tuple[str, ...]]:
        """``{scope: groups}`` for every scope with a ceiling (the manifest's ``groups``)."""
        return {s.name: s.groups for s in self.scopes if s.groups}


def app_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The app folder: ``KIT_APP_PATH``, else the packaged ``kit_app`` directory."""
    source = os.environ if environ is None else environ
    raw = source.get(APP_PATH_ENV, "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    if (PACKAGED_DIR / MANIFEST).is_file():
        return PACKAGED_DIR
    raise AppError(
        f"no MCP app: set {APP_PATH_ENV} to the app folder (make dev sets it from cdk.json kit:app), "
        f"or package one as {PACKAGED_DIR}"
    )


def load_manifest(root: Path) -> AppManifest:
    """Read and validate ``<root>/app.json``; :class:`AppError` names the file and the field."""
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AppError(f"{path}: missing (an app folder needs its manifest {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise AppError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"scopes", "tables", "description"}:
        raise AppError(f"{path}: an object with 'scopes' and optionally 'tables'")
    scopes = _scopes(path, data.get("scopes"))
    tables = _tables(path, data.get("tables", []))
    return AppManifest(root=root, scopes=scopes, tables=tables)


@cache
def current() -> AppManifest:
    """The manifest of this process's app (loaded once per container, at first use)."""
    return load_manifest(app_dir())


def _scopes(path: Path, raw: Any) -> tuple[ScopeDef, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= 100:
        raise AppError(f"{path}: 'scopes' must be a list of 1 to 100 scopes")
    out: list[ScopeDef] = []
    for i, entry in enumerate(raw):
        where = f"{path}: scopes[{i}]"
        if not isinstance(entry, dict) or not {"name", "description"} <= set(entry) <= _SCOPE_KEYS:
            raise AppError(f"{where}: an object with 'name', 'description' and optionally 'default', 'groups'")
        name, description = entry["name"], entry["description"]
        default, groups = entry.get("default", True), entry.get("groups", [])
        if not isinstance(name, str) or not _SCOPE_RE.match(name) or name in RESERVED_SCOPES:
            raise AppError(
                f"{where}.name: a scope token (printable ASCII, no space, quote, backslash or '/'), "
                f"not one of {sorted(RESERVED_SCOPES)}; got {name!r}"
            )
        if any(s.name == name for s in out):
            raise AppError(f"{where}.name: duplicate scope {name!r}")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise AppError(f"{where}.description: 1 to 256 characters")
        if not isinstance(default, bool):
            raise AppError(f"{where}.default: true or false")
        if not isinstance(groups, list) or not all(isinstance(g, str) and _GROUP_RE.match(g) for g in groups):
            raise AppError(f"{where}.groups: a list of Cognito group names")
        out.append(ScopeDef(name, description.strip(), default, tuple(dict.fromkeys(groups))))
    if not any(s.default for s in out):
        raise AppError(f"{path}: at least one scope must be a default (what a request without scope asks for)")
    return tuple(out)


def _tables(path: Path, raw: Any) -> tuple[AppTable, ...]:
    if not isinstance(raw, list) or len(raw) > 10:
        raise AppError(f"{path}: 'tables' must be a list of at most 10 tables")
    out: list[AppTable] = []
    for i, entry in enumerate(raw):
        where = f"{path}: tables[{i}]"
        if not isinstance(entry, dict) or not {"name"} <= set(entry) <= _TABLE_KEYS:
            raise AppError(f"{where}: an object with 'name' and optionally 'sortKey', 'ttlAttribute', 'actions'")
        name = entry["name"]
        if not isinstance(name, str) or not _TABLE_RE.match(name) or name in KIT_TABLE_NAMES:
            raise AppError(
                f"{where}.name: 1-31 lowercase letters and digits, starting with a letter, "
                f"not one of the kit's tables {sorted(KIT_TABLE_NAMES)}; got {name!r}"
            )
        if any(t.name == name for t in out):
            raise AppError(f"{where}.name: duplicate table {name!r}")
        sort_key, ttl = entry.get("sortKey"), entry.get("ttlAttribute", "ttl")
        for key, value in (("sortKey", sort_key), ("ttlAttribute", ttl)):
            if value is not None and (not isinstance(value, str) or not _ATTR_RE.match(value)):
                raise AppError(f"{where}.{key}: an attribute name or null")
        actions = entry.get("actions", list(DEFAULT_TABLE_ACTIONS))
        if (
            not isinstance(actions, list)
            or not actions
            or not all(isinstance(a, str) and re.fullmatch(r"dynamodb:[A-Za-z]+", a) for a in actions)
        ):
            raise AppError(f"{where}.actions: a non-empty list of explicit DynamoDB actions (no wildcards)")
        out.append(AppTable(name, sort_key, ttl, tuple(dict.fromkeys(actions))))
    return tuple(out)
