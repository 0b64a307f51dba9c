"""The layers point only down: engine imports neither claims, reports nor the CLI; claims may
read the engine; reports read both; the pagemerge package (the CLI) sits on top."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"engine": {"claims", "reports", "pagemerge"}, "claims": {"reports", "pagemerge"},
             "reports": {"pagemerge"}}


def imported_packages(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
           for p in sorted((ROOT / package).rglob("*.py"))
           for line, mod in imported_packages(p) if mod in FORBIDDEN[package]]
    assert bad == []
