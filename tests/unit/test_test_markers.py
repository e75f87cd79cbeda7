"""The test suite's markers: every marker a test uses is declared (pytest runs with
``--strict-markers``, so an undeclared or misspelt one fails the collection instead of being
ignored), and every test that starts a worker process is marked ``slow``, so ``-m "not slow"`` is
a quick run for development while ``deploy/test.sh`` still runs everything."""

from __future__ import annotations

import ast
import re
import tomllib

from hub.settings import REPO_ROOT

TESTS = REPO_ROOT / "tests"
BUILTIN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
STARTS_A_WORKER = re.compile(r"\bWorkerProcess\b")


def pytest_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def test_every_marker_used_is_declared_and_undeclared_ones_fail():
    config = pytest_config()
    assert "--strict-markers" in config["addopts"].split()
    declared = {line.split(":")[0].strip() for line in config["markers"]}
    assert "slow" in declared
    used = {name for path in TESTS.rglob("*.py")
            for name in re.findall(r"\bpytest\.mark\.([A-Za-z_]\w*)", path.read_text())}
    assert used - BUILTIN <= declared, sorted(used - BUILTIN - declared)


def _marks(decorators: list[ast.expr]) -> set[str]:
    out = set()
    for node in decorators:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                out.add(sub.attr)
    return out


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return _marks([node.value])
    return set()


def _tests_that_start_a_worker(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Test functions of a module that start a worker: themselves, or through a fixture of the
    module that does (fixtures depending on fixtures included)."""
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    starts = {name for name, f in functions.items() if STARTS_A_WORKER.search(ast.unparse(f))}
    changed = True
    while changed:
        changed = False
        for name, f in functions.items():
            if name not in starts and {a.arg for a in f.args.args} & starts:
                starts.add(name)
                changed = True
    return [f for name, f in functions.items() if name.startswith("test_") and name in starts]


def test_every_test_that_starts_a_worker_process_is_marked_slow():
    unmarked = []
    for path in sorted((TESTS / "integration").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        if "slow" in _module_marks(tree):
            continue
        unmarked += [f"{path.name}::{f.name}" for f in _tests_that_start_a_worker(tree)
                     if "slow" not in _marks(f.decorator_list)]
    assert not unmarked, unmarked


def test_the_ci_command_deselects_nothing_and_the_quick_run_is_documented():
    script = (REPO_ROOT / "deploy" / "test.sh").read_text()
    runs = [line for line in script.splitlines() if "-m pytest" in line]
    assert runs == ['.venv/bin/python -m pytest "$@"'], runs
    assert not re.search(r"(^|\s)-m\b|not slow", pytest_config()["addopts"])
    for doc in ("README.md", "docs/testing.md"):
        assert '-m "not slow"' in (REPO_ROOT / doc).read_text(), doc
