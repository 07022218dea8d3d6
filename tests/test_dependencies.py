"""Every third-party import is a declared, pinned distribution, and the lock agrees.

The runtime package and the migrations may import only ``[project] dependencies``; tests,
benchmarks and devtools may also use the ``dev`` extra. ``requirements.lock`` (``make lock``)
holds the whole resolved tree with hashes: each pin of pyproject.toml is in it, same version.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIRS = ("warranty", "migrations")
DEV_DIRS = ("tests", "bench", "devtools")
OWN = {"warranty", "tests", "bench", "devtools", "migrations"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)$")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(requirements: list[str]) -> dict[str, str]:
    """``{distribution: version}`` of pinned requirements; an unpinned one fails."""
    found = {}
    for line in requirements:
        match = PIN.match(line.strip())
        assert match, f"not pinned with ==: {line!r}"
        found[canonical(match[1])] = match[3]
    return found


def top_level_imports(path: Path) -> set[str]:
    """The first component of every absolute import in one file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(dirs: tuple[str, ...]) -> dict[str, set[str]]:
    """``{import name: {files}}`` of what the folders import beyond the stdlib and our own."""
    used: dict[str, set[str]] = {}
    for folder in dirs:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in top_level_imports(path) - OWN - set(sys.stdlib_module_names):
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def undeclared(dirs: tuple[str, ...], declared: set[str]) -> list[str]:
    """Imports whose distribution is not declared, each with where it is imported."""
    providers = packages_distributions()
    problems = []
    for name, files in sorted(third_party(dirs).items()):
        dists = {canonical(d) for d in providers.get(name, [])}
        if not dists:
            problems.append(f"{name} (no installed distribution provides it): "
                            f"{', '.join(sorted(files))}")
        elif not dists & declared:
            problems.append(f"{name} from {'/'.join(sorted(dists))}, not declared: "
                            f"{', '.join(sorted(files))}")
    return problems


def test_every_pin_is_exact():
    project = pyproject()["project"]
    pins(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins(extra)


def test_runtime_code_imports_only_runtime_dependencies():
    declared = set(pins(pyproject()["project"]["dependencies"]))
    assert undeclared(RUNTIME_DIRS, declared) == []


def test_tests_and_tools_import_only_declared_dependencies():
    project = pyproject()["project"]
    declared = set(pins(project["dependencies"])) | set(
        pins(project["optional-dependencies"]["dev"]))
    assert undeclared(DEV_DIRS, declared) == []


def test_the_scan_sees_an_undeclared_import(tmp_path, monkeypatch):
    """The check itself: a file importing a distribution nobody declared is reported."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "x.py").write_text("import pytest\nfrom flask import Flask\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [p.split(" ")[0] for p in undeclared(("tools",), {"flask"})] == ["pytest"]


def locked() -> dict[str, str]:
    """``{distribution: version}`` of requirements.lock."""
    found = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            found[canonical(match[1])] = match[2]
    return found


def test_the_lock_holds_every_pin_at_its_version():
    project = pyproject()["project"]
    wanted = pins(project["dependencies"]) | pins(project["optional-dependencies"]["dev"])
    lock = locked()
    disagree = {name: (version, lock.get(name)) for name, version in wanted.items()
                if lock.get(name) != version}
    assert disagree == {}, "pyproject pin vs requirements.lock (run `make lock`)"


def test_every_locked_requirement_has_a_hash():
    """``pip install --require-hashes`` needs one on every entry (continued lines joined)."""
    entries = (ROOT / "requirements.lock").read_text().replace("\\\n", " ").splitlines()
    requirements = [e for e in entries if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==", e)]
    assert len(requirements) > 50
    assert [e.split()[0] for e in requirements if "--hash=sha256:" not in e] == []
