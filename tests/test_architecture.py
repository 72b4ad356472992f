"""The house rules that keep the layout readable, checked on the source itself.

- no import cycle between the application's modules, and no module imported inside a function
  to dodge one;
- one commit point: only ``evaluation.transactions`` commits;
- the pure cores import neither Flask nor SQLAlchemy;
- no test module imports another (shared helpers live in ``tests/helpers/``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.databases import ROOT

PACKAGE = ROOT / "evaluation"
PURE_CORES = (
    "evaluation.tally.core",
    "evaluation.tally.seal",
    "evaluation.archive.rules",
    "evaluation.ballot_forms",
    "evaluation.rule_sets",
    "evaluation.paper.rules",
    "evaluation.paper.counts",
)
# The one import inside a function: ``evaluation.create_app`` loads the factory on call, so that
# importing a pure core (which imports the ``evaluation`` package first) loads no Flask.
LATE_IMPORTS_ALLOWED = {("evaluation", "create_app", "evaluation.app")}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path, ROOT): ast.parse(path.read_text(encoding="utf-8"))
        for path in PACKAGE.rglob("*.py")
    }


def _imported(node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The application modules an import statement loads (a package's submodules by name)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    module = node.module or ""
    subs = {f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known}
    if len(subs) == len(node.names):
        return subs
    return subs | ({module} if module in known else set())


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    known = set(modules)
    graph = {
        name: {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _imported(node, known)
            if target != name and target != "evaluation"
        }
        for name, tree in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_no_application_module_is_imported_inside_a_function() -> None:
    modules = _modules()
    known = set(modules)
    late = set()
    for name, tree in modules.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    late |= {(name, function.name, t) for t in _imported(node, known)}
    assert late == LATE_IMPORTS_ALLOWED


def test_only_the_commit_point_commits() -> None:
    committing = sorted(
        f"{name}:{node.lineno}"
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
        and name != "evaluation.transactions"
    )
    assert committing == []


def test_pure_cores_import_neither_flask_nor_sqlalchemy() -> None:
    probe = (
        "import json, sys\n"
        + "".join(f"import {name}\n" for name in PURE_CORES)
        + "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert "evaluation" in loaded
    assert not loaded & {"flask", "sqlalchemy", "werkzeug", "flask_sqlalchemy"}


def test_no_test_module_imports_another() -> None:
    tests = ROOT / "tests"
    offending = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for imported in names:
                last = imported.rsplit(".", 1)[-1]
                if imported.startswith("tests.") and (
                    last.startswith("test_") or last == "conftest"
                ):
                    offending.append(f"{path.relative_to(ROOT)}: {imported}")
    assert offending == []


def test_the_factory_registers_every_area_and_command(app) -> None:  # type: ignore[no-untyped-def]
    assert set(app.blueprints) == {
        "accounts",
        "rounds",
        "codes",
        "voting",
        "reports",
        "archive",
        "paper",
    }
    commands = set(app.cli.list_commands(None))  # type: ignore[arg-type]
    assert {
        "setup",
        "demo",
        "user",
        "round",
        "codes",
        "report",
        "verify",
        "audit",
        "archive",
        "backup",
        "restore",
    } <= commands
