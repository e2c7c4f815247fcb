"""The package stays readable in pieces: no function longer than 60 lines and no module longer
than 400 (a newcomer can hold a function on one screen and read a module in one sitting).

Every ``.py`` under ``minitorch_alexnet/`` is parsed with ``ast``; a function's length runs
from its ``def`` line (decorators not counted) to its last line, docstring and comments
included, and a nested function counts inside its parent as well as on its own. The failure
names every offender with its length. Run with ``pytest -m style``.
"""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.style

PACKAGE = Path(__file__).resolve().parent.parent / "minitorch_alexnet"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def long_functions(path):
    """(qualified name, first line, length) of every function in ``path`` over the limit."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = child.end_lineno - child.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append((name[:-1], child.lineno, length))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def test_the_package_has_modules():
    assert len(modules()) > 10 and PACKAGE / "model.py" in modules()


def test_no_function_over_60_lines():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({length} lines)"
                 for path in modules() for name, line, length in long_functions(path)]
    assert not offenders, (f"functions over {MAX_FUNCTION_LINES} lines (split them):\n"
                           + "\n".join(offenders))


def test_no_module_over_400_lines():
    offenders = []
    for path in modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{path.relative_to(PACKAGE.parent)} ({lines} lines)")
    assert not offenders, (f"modules over {MAX_MODULE_LINES} lines (split them):\n"
                           + "\n".join(offenders))


def test_the_check_sees_a_long_function(tmp_path):
    lines = ["class A:", "    def f(self):"] + [f"        x = {i}" for i in range(MAX_FUNCTION_LINES)]
    source = tmp_path / "long.py"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")      # f: 1 + 60 lines
    assert long_functions(source) == [("A.f", 2, MAX_FUNCTION_LINES + 1)]
