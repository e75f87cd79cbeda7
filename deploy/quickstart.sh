#!/usr/bin/env bash
# The main job on the embedded default: set everything up, then run a whole scripted gameday
# (`hub demo`): the embedded Kafka broker and the worker with the embedded ClickHouse store, the
# example backends, `hub gateway`, a load generator, the example experiment with a fault on one
# route until its abort rule fires and the halt target removes the fault; then the report and the
# dashboards, and where to look. The demo's hub keeps running in its own home for SQL afterwards;
# the last lines say how to stop it. Arguments go to `hub demo` (e.g. --short, --duration 180).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
exec .venv/bin/hub demo "$@"
