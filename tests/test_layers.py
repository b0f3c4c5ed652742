"""The layers point one way: a module may import only what its layer is allowed to.

Read from the source with ``ast``, so an import added anywhere in a package (also inside
a function) is caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# package -> project packages its modules must not import
FORBIDDEN = {
    "bot/approvals": ("bot.", "handlers", "storage"),
    "bot/service": ("bot.runtime", "bot.cli", "bot.sandbox", "handlers"),
    "bot/exalate": ("bot.service", "bot.runtime", "bot.cli", "bot.sandbox", "handlers", "storage"),
    "handlers": ("bot.runtime", "bot.cli", "bot.sandbox", "storage"),
    "storage": ("bot.service", "bot.runtime", "bot.cli", "bot.sandbox", "handlers"),
    "bot/sandbox": ("bot.service", "bot.runtime", "bot.cli", "handlers", "storage"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package: str) -> None:
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path)
        if any(name.startswith(prefix) for prefix in FORBIDDEN[package])
        and not name.startswith(package.replace("/", "."))
    }
    assert found == set()


def test_the_check_sees_imports() -> None:
    """The checker itself: a module that imports the runtime is caught."""
    assert "bot.runtime.app" in _imports(ROOT / "bot" / "cli" / "demo.py")
