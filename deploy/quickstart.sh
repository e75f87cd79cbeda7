#!/usr/bin/env bash
# The main job on the embedded default: start a local Kafka broker and the worker (which owns the
# embedded ClickHouse store), send 100,000 synthetic gateway request legs, and query them.
# The hub keeps running afterwards; `.venv/bin/hub down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
HUB=.venv/bin/hub
$HUB up
$HUB emit --count "${QUICKSTART_COUNT:-100000}"
echo "==> waiting for the rows to be queryable"
want="${QUICKSTART_COUNT:-100000}"
for _ in $(seq 1 120); do
  got=$($HUB sql "SELECT count() FROM hub.requests")
  [ "$got" -ge "$want" ] && break
  sleep 0.5
done
echo "==> SELECT count() FROM hub.requests"
$HUB sql "SELECT count() FROM hub.requests"
echo "==> requests and error rate per gateway leg"
$HUB sql "SELECT leg, count() AS requests, round(avg(status >= 500), 4) AS error_rate, round(quantile(0.99)(latency_ms), 1) AS p99_ms FROM hub.requests GROUP BY leg ORDER BY leg"
$HUB status
echo "The hub is still running: try  .venv/bin/hub sql \"SELECT route, count() FROM hub.requests GROUP BY route\"  and stop it with  .venv/bin/hub down"
