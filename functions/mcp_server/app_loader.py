"""Import the app folder's ``server.py`` as ``kit_app.server`` and build its tool registry.

The folder is imported as the package ``kit_app`` wherever it is (``KIT_APP_PATH`` locally,
``kit_app/`` in the Lambda asset), so an app imports its own modules relatively
(``from .store import NoteStore``) and the same code runs in both places.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from functions.core.platform.kit_app import MANIFEST, PACKAGE, SERVER_MODULE, AppError, AppManifest
from functions.mcp_server.api import AppContext
from functions.mcp_server.registry import ToolRegistry

Register = Callable[[ToolRegistry, AppContext], None]


def import_server(root: Path) -> ModuleType:
    """The app's ``server`` module; ``AppError`` if it is missing or has no ``register``."""
    package = sys.modules.get(PACKAGE)
    if package is None:
        spec = importlib.util.spec_from_loader(PACKAGE, loader=None, is_package=True)
        assert spec is not None and spec.submodule_search_locations is not None
        spec.submodule_search_locations.append(str(root))
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
    elif [str(root)] != list(getattr(package, "__path__", [])):
        raise AppError(f"{PACKAGE} is already imported from {list(package.__path__)}, not {root}")
    name = f"{PACKAGE}.{SERVER_MODULE}"
    if not (root / f"{SERVER_MODULE}.py").is_file():
        raise AppError(f"{root}: no {SERVER_MODULE}.py (an app folder holds {MANIFEST} and {SERVER_MODULE}.py)")
    module = importlib.import_module(name)
    if not callable(getattr(module, "register", None)):
        raise AppError(f"{root / (SERVER_MODULE + '.py')}: defines no register(tools, ctx) function")
    return module


def build_registry(manifest: AppManifest, ctx: AppContext, register: Register | None = None) -> ToolRegistry:
    """A registry checked against ``manifest``'s catalogue, filled by the app's ``register``.

    Raises ``UnknownScopeError`` naming the tool and the scope missing from ``app.json``.
    """
    tools = ToolRegistry(manifest.scope_names, source=str(manifest.root / MANIFEST))
    (register or import_server(manifest.root).register)(tools, ctx)
    return tools


def check_app(manifest: AppManifest) -> list[str]:
    """Synth-time check: import the app and register its tools with placeholder tables.

    Nothing calls AWS (repositories only keep table names). Returns the tool names; raises
    ``AppError`` or ``UnknownScopeError`` with a message naming the tool and the scope.
    """
    ctx = AppContext(tables={t.name: f"synth-placeholder-{t.name}" for t in manifest.tables})
    return [spec.name for spec in build_registry(manifest, ctx)]


def extend_hook(root: Path) -> Callable[[Any, AppContext], None] | None:
    """The app's optional ``extend(server, ctx)`` (resources, prompts), or None."""
    hook = getattr(import_server(root), "extend", None)
    return hook if callable(hook) else None
