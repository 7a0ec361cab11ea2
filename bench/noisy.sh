#!/usr/bin/env bash
# The noisy neighbour: a quiet tenant's GetLead p99 through the gateway
# alone, then beside a noisy tenant (a flood of streams, slow consumers,
# big imports, endless request bodies, one user hammering), with every fair
# share at its default. One process (`crm serve`) on SQLite, loopback only,
# on ports of its own. Tunables: DURATION=10s WARMUP=2s CONCURRENCY=8
# CONNECTIONS=2 BIN_DIR=<dir with crm and crm-bench> OUT=<json file>;
# NOISE=streams,slow,imports,endless,hammer picks kinds of noise (all by default).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-8}
CONNECTIONS=${CONNECTIONS:-2}
if [ -n "${BIN_DIR:-}" ]; then
  bin=$(cd "$BIN_DIR" && pwd)
else
  cargo build --release -p crm -p crm-bench
  bin=$PWD/target/release
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && exec env CRM__TELEMETRY__LOG_FILTER=warn \
  CRM__SERVE__GATEWAY_ADDR=127.0.0.1:51051 CRM__SERVE__LEADS_ADDR=127.0.0.1:51061 \
  CRM__SERVE__OPPORTUNITIES_ADDR=127.0.0.1:51062 "$bin/crm" serve > serve.log 2>&1) &
pid=$!
for _ in $(seq 1 300); do
  if (exec 3<>/dev/tcp/127.0.0.1/51051) 2>/dev/null; then break; fi
  sleep 0.1
done
"$bin/crm-bench" --scenario noisy-neighbour --target http://127.0.0.1:51051 --data-dir "$work/data" \
  --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
  ${OUT:+--json "$OUT"}
