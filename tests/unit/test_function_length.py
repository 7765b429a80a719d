"""No function in the product packages is longer than 80 lines (decorators and docstring
included): long orchestration reads as named steps instead. A new long function fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("forecasting", "db", "scheduler", "web", "stockcast")
LIMIT = 80


def _long_functions(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > LIMIT:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(LIMIT))
    sample = tmp_path / "long.py"
    sample.write_text(f"def long():\n{body}\n")
    assert _long_functions(sample, tmp_path) == [f"long.py:1 long ({LIMIT + 1} lines)"]
    sample.write_text(f"def short():\n{body.splitlines()[0]}\n")
    assert _long_functions(sample, tmp_path) == []


def test_no_product_function_is_longer_than_80_lines() -> None:
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50  # the packages were found
    found = [entry for path in files for entry in _long_functions(path)]
    assert found == []
