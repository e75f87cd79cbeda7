#!/usr/bin/env bash
# Sets up everything the hub needs on a fresh machine: a virtualenv with the hub and its test
# dependencies, and the Kafka broker's jars from Maven Central (cached outside the repository).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "bootstrap: $PYTHON not found (Python 3.11+ is required)" >&2; exit 1; }
command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] || { echo "bootstrap: java not found (Java 17+ is required for the embedded broker)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "bootstrap: mvn not found (Maven fetches the embedded broker's jars)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing the hub and its dependencies into .venv"
  # pip's and setuptools' own chatter goes to a log, shown only when the install fails
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
         .venv/bin/python -m pip install --quiet -e ".[test]"; } > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "bootstrap: installing into .venv failed (log above, also in .venv/install.log)" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "==> fetching the Kafka broker (once per version)"
.venv/bin/hub kafka install
