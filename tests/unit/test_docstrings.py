"""Every public function, method and class in functions/ states its contract in a docstring.

Public means a name without a leading underscore, at module level or inside a public class
(methods of Protocols included). Functions nested in functions and members of private classes
are implementation details and are not walked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def undocumented(source: str, module: str) -> Iterator[str]:
    """``module:line qualified.name`` of every public definition in ``source`` without a docstring."""

    def walk(node: ast.AST, prefix: str) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _Def) or child.name.startswith("_"):
                continue
            if ast.get_docstring(child) is None:
                yield f"{module}:{child.lineno} {prefix}{child.name}"
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")

    yield from walk(ast.parse(source), "")


def test_every_public_definition_in_functions_has_a_docstring() -> None:
    modules = sorted(FUNCTIONS.rglob("*.py"))
    assert modules, FUNCTIONS
    missing = [
        name
        for path in modules
        for name in undocumented(path.read_text(encoding="utf-8"), str(path.relative_to(FUNCTIONS.parent)))
    ]
    assert not missing, "public definitions without a docstring:\n" + "\n".join(missing)


_SAMPLE = '''
"""Module."""
from typing import Protocol


def bare(): pass
def documented():
    """Yes."""
async def bare_async(): pass
def _private(): pass


class Repo(Protocol):
    """A repository."""

    def get(self, key: str) -> str: ...
    def put(self, key: str) -> None:
        """Store."""
    def _hidden(self) -> None: ...

    class Inner:
        def deep(self): pass


class Bare:
    x = 1


class _Private:
    def exposed(self): pass


def outer():
    """Documented; what it nests is not walked."""
    def nested(): pass
'''


def test_the_walk_names_what_lacks_a_docstring() -> None:
    assert list(undocumented(_SAMPLE, "m.py")) == [
        "m.py:6 bare",
        "m.py:9 bare_async",
        "m.py:16 Repo.get",
        "m.py:21 Repo.Inner",
        "m.py:22 Repo.Inner.deep",
        "m.py:25 Bare",
    ]
