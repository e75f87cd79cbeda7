"""Building the package installs the schema files as packages: no setuptools warning that
``schemas.clickhouse`` or ``schemas.json`` is installed as data, and every migration and record
schema is in the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_building_the_package_warns_about_nothing_and_ships_the_schemas(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("hub", "streams", "dashboards", "schemas"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "build_py", "-d",
                             str(tmp_path / "build")], cwd=src, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "as data is deprecated" not in output and "please list it in `packages`" not in output, output
    for kind, pattern in (("clickhouse", "*.sql"), ("json", "*.json")):
        shipped = sorted(p.name for p in (tmp_path / "build" / "schemas" / kind).glob(pattern))
        assert shipped == sorted(p.name for p in (ROOT / "schemas" / kind).glob(pattern)) and shipped
