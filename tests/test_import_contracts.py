"""The import contracts cover the whole package.

``lint-imports`` (``make test``) checks the contracts in pyproject.toml; a layers contract says
nothing about a module that is in no layer, so this test fails on one: every module of
``warranty`` is a layer's package or module, or lies inside one. The root package itself holds
only the version and imports nothing.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config["contracts"]


def layer_modules() -> set[str]:
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    found = set()
    for row in layers["layers"]:
        assert ":" not in row, f"{row}: siblings that may import each other hide a cycle"
        found |= {name.strip() for name in row.split("|")}
    return found


def package_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "warranty").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_every_module_is_in_a_layer():
    layers = layer_modules()
    outside = sorted(
        module for module in package_modules() - {"warranty"}
        if not any(module == layer or module.startswith(layer + ".") for layer in layers)
    )
    assert outside == [], f"modules in no layer of [tool.importlinter]: {outside}"


def test_layers_are_whole_packages_and_nothing_is_ignored():
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    assert not layers.get("ignore_imports")
    for name in layer_modules():
        assert name.count(".") == 1, f"{name}: a layer is a top-level package or module"


def test_no_cycles_contract_covers_the_package():
    acyclic = [c for c in contracts() if c["type"] == "acyclic_siblings"]
    assert [c["ancestors"] for c in acyclic] == [["warranty"]]
    assert not any(c.get("ignore_imports") or c.get("skip_descendants") for c in acyclic)


def test_the_root_package_imports_nothing():
    tree = ast.parse((ROOT / "warranty" / "__init__.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
