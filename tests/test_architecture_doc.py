"""docs/architecture.md's tree is the package's tree: every module is listed, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    found, package = set(), None
    for line in block.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name:
            continue
        if not line.startswith(" "):
            package = name.rstrip("/") if name.endswith("/") else None
            if package is None:
                found.add(name)
        else:
            found.add(f"{package}/{name}" if name.endswith(".py") else f"{package}/{name}")
    return {re.sub(r"/$", "/__init__.py", n) for n in found}


def test_the_tree_lists_every_module_and_only_those():
    actual = {str(p.relative_to(ROOT)) for p in (ROOT / "warranty").rglob("*.py")
              if "__pycache__" not in p.parts}
    # A package's own __init__.py is the package's line.
    top_inits = {str(p.relative_to(ROOT)) for p in (ROOT / "warranty").glob("*/__init__.py")}
    expected = actual - top_inits - {"warranty/__init__.py"}
    assert listed() == expected
