"""docs/traceability.md cannot rot: every ``path::test`` it names is a test pytest collects.

Collection is decided statically, by pytest's default rules (the project sets no
``python_files``/``python_classes``/``python_functions`` of its own, checked below): a module
``test_*.py`` under ``tests/``, a module-level function ``test*``, or a method ``test*`` of a
class ``Test*`` that has no ``__init__``. Parsing, not importing, keeps this check fast.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "traceability.md"
REFERENCE = re.compile(r"`(tests/[\w/.-]+\.py)::([\w:]+)`")
# Every specification the kit implements has a heading of its own on the page.
SPECS = (
    "OAuth 2.1",
    "RFC 6749",
    "RFC 6750",
    "RFC 7009",
    "RFC 7591",
    "RFC 7592",
    "RFC 7636",
    "RFC 8252",
    "RFC 8414",
    "RFC 8707",
    "RFC 9728",
    "MCP authorization",
    "Client ID Metadata Documents",
    "MCP transport",
)


def references(text: str) -> list[tuple[str, str]]:
    """Every ``(path, test)`` named in backticks as ``path::test`` (``test`` may be ``Class::method``)."""
    return REFERENCE.findall(text)


def collected(module: Path) -> set[str]:
    """The test names pytest's default rules collect from ``module`` (``name`` or ``Class::name``)."""
    if not re.fullmatch(r"test_\w+\.py", module.name):
        return set()
    names: set[str] = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
            if any(m.name == "__init__" for m in methods):
                continue  # pytest skips such a class
            names.update(f"{node.name}::{m.name}" for m in methods if m.name.startswith("test"))
    return names


def broken(refs: list[tuple[str, str]], root: Path) -> list[str]:
    """The references in ``refs`` that name no collected test under ``root``, as ``path::test``."""
    found = {path: collected(root / path) if (root / path).is_file() else set() for path, _ in refs}
    return [f"{path}::{test}" for path, test in refs if test not in found[path]]


def test_every_reference_names_a_collected_test() -> None:
    refs = references(DOC.read_text(encoding="utf-8"))
    assert len(refs) >= 100, "the index lost its references"
    assert broken(refs, ROOT) == []


def test_every_spec_has_its_section_with_tests() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    for spec in SPECS:
        found = [s for s in sections if s.startswith(spec)]
        assert found, f"no section for {spec}"
        assert references(found[0]), f"the {spec} section names no test"


def test_missing_modules_tests_and_uncollected_names_are_reported(tmp_path: Path) -> None:
    module = tmp_path / "tests" / "test_x.py"
    module.parent.mkdir()
    module.write_text(
        "def test_a(): pass\n"
        "def helper_b(): pass\n"
        "class TestC:\n    def test_d(self): pass\n"
        "class TestE:\n    def __init__(self): pass\n    def test_f(self): pass\n",
        encoding="utf-8",
    )
    (tmp_path / "tests" / "x_support.py").write_text("def test_g(): pass\n", encoding="utf-8")
    doc = (
        "`tests/test_x.py::test_a` `tests/test_x.py::TestC::test_d` `tests/test_x.py::test_gone` "
        "`tests/test_x.py::helper_b` `tests/test_x.py::TestE::test_f` `tests/nowhere.py::test_a` "
        "`tests/x_support.py::test_g`"
    )
    assert broken(references(doc), tmp_path) == [
        "tests/test_x.py::test_gone",
        "tests/test_x.py::helper_b",
        "tests/test_x.py::TestE::test_f",
        "tests/nowhere.py::test_a",
        "tests/x_support.py::test_g",
    ]


def test_pytest_collects_by_its_default_rules_here() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert not {"python_files", "python_classes", "python_functions"} & options.keys()
    assert options["testpaths"] == ["tests"]
