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
    "bot/health": ("bot.service", "bot.runtime", "bot.cli", "bot.sandbox", "handlers", "storage"),
    # The service speaks to the store, Exalate and Slack through bot.ports only.
    "bot/service": ("bot.runtime", "bot.cli", "bot.sandbox", "handlers", "storage"),
    "bot/exalate": ("bot.service", "bot.runtime", "bot.cli", "bot.sandbox", "handlers", "storage"),
    "handlers": ("bot.runtime", "bot.cli", "bot.sandbox", "bot.exalate", "storage"),
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
    assert _breaches(ROOT / package, package) == set()


def _breaches(folder: Path, package: str) -> set[str]:
    """Each import of a module under ``folder`` that ``package``'s layer forbids."""
    return {
        f"{path.relative_to(folder)} imports {name}"
        for path in folder.rglob("*.py")
        for name in _imports(path)
        if any(name.startswith(prefix) for prefix in FORBIDDEN[package])
        and not name.startswith(package.replace("/", "."))
    }


def test_the_check_sees_imports() -> None:
    """The checker itself: a module that imports the runtime is caught."""
    assert "bot.runtime.app" in _imports(ROOT / "bot" / "cli" / "demo.py")


@pytest.mark.parametrize(
    "line", ["from bot.exalate import Project", "import bot.exalate.client", "import storage"]
)
def test_a_handler_reaching_past_the_service_is_caught(tmp_path: Path, line: str) -> None:
    """A listener that imports the Exalate client or the store (also inside a function)
    fails the layering check."""
    (tmp_path / "options.py").write_text(f"def project_options():\n    {line}\n")
    assert _breaches(tmp_path, "handlers") == {f"options.py imports {line.split()[1]}"}
