"""The type check in CI: ``deploy/test.sh`` runs mypy on the modules listed in ``pyproject.toml``'s
``[tool.mypy] files`` before the tests, and a type error there fails the run."""

from __future__ import annotations

import re
import tomllib

from hub.settings import REPO_ROOT


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_the_ci_command_runs_mypy_on_the_listed_files_before_the_tests_and_stops_on_an_error():
    lines = (REPO_ROOT / "deploy" / "test.sh").read_text().splitlines()
    assert "set -euo pipefail" in lines
    # no arguments: mypy checks the files of [tool.mypy], and its exit status ends the script
    assert ".venv/bin/mypy" in lines, [line for line in lines if "mypy" in line]
    mypy = lines.index(".venv/bin/mypy")
    assert mypy < lines.index('.venv/bin/python -m pytest "$@"')
    assert "set +e" not in lines[:mypy]
    # installed with the test dependencies, as ruff is
    assert any(re.match(r"mypy\b", dep) for dep in pyproject()["project"]["optional-dependencies"]["test"])


def test_every_listed_module_exists_and_untyped_libraries_are_named_one_by_one():
    config = pyproject()["tool"]["mypy"]
    assert config["python_version"] == "3.11"
    files = config["files"]
    assert files and len(set(files)) == len(files)
    assert [f for f in files if not (REPO_ROOT / f).exists()] == []
    assert "ignore_missing_imports" not in config  # only per module, in the overrides
    ignored = [o for o in config.get("overrides", []) if o.get("ignore_missing_imports")]
    assert ignored and all(not m.startswith(("hub", "streams", "dashboards")) for o in ignored for m in o["module"])
