#!/usr/bin/env bash
# Sets everything up and runs the whole test suite. Integration tests start their own Kafka
# broker (embedded, on free loopback ports) and use the real ClickHouse engine (chDB); if the
# broker cannot start they fail, never skip. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
echo "==> lint (ruff: pyproject.toml [tool.ruff])"
.venv/bin/ruff check hub streams dashboards bench tests
echo "==> types (mypy: the modules listed in pyproject.toml [tool.mypy] files)"
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$code"
