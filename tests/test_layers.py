"""The packages form layers: a module may import its own layer and those below it, never one above."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["corpus", "connectors", "store", "ingest", "server", "cli"]  # lowest first


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every import in the module, inside functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def upward_imports(root: Path) -> list[str]:
    found = []
    for layer, package in enumerate(LAYERS):
        for path in sorted((root / package).rglob("*.py")):
            for name in imported_packages(path) & set(LAYERS):
                if LAYERS.index(name) > layer:
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_no_layer_imports_a_higher_one():
    assert upward_imports(REPO) == []


def test_an_upward_import_is_caught(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "store" / "reader.py").write_text("def f():\n    from server.search import Searcher\n")
    (tmp_path / "corpus" / "ok.py").write_text("import json\nfrom corpus import errors\n")
    assert upward_imports(tmp_path) == ["store/reader.py imports server"]


@pytest.mark.parametrize("package", LAYERS)
def test_every_layer_is_a_package(package):
    assert (REPO / package / "__init__.py").exists()


def test_a_folder_named_like_a_package_does_not_shadow_it(tmp_path):
    """`python -m cli.main` run beside a store folder called `store/` (which holds `chroma/`) imports our package."""
    (tmp_path / "store" / "chroma").mkdir(parents=True)
    run = subprocess.run([sys.executable, "-c", "import store.chroma, cli.main; print(store.chroma.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert Path(run.stdout.strip()) == REPO / "store" / "chroma.py"
