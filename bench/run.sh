#!/usr/bin/env bash
# Runs the benchmarks on SQLite and on PostgreSQL and writes
# docs/benchmarks.md. Not part of CI. Tunables (environment):
#   DURATION=10s WARMUP=2s CONCURRENCY=32 CONNECTIONS=4 SEED_LEADS=100000
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-32}
CONNECTIONS=${CONNECTIONS:-4}
SEED_LEADS=${SEED_LEADS:-100000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
SECONDS_TOTAL=${DURATION%s}

cargo build --release -p crm -p crm-bench
bin=$PWD/target/release
work=$(mktemp -d)
results=$work/results
mkdir -p "$results"
trap 'pkill -f "$bin/crm serve" 2>/dev/null || true; rm -rf "$work"' EXIT

start_suite() { # backend dir [env...]
  local dir=$2; shift 2
  mkdir -p "$dir"
  # One tenant drives all the load: its rate limit (a policy, not a cost)
  # is off; everything else is as configured by default.
  (cd "$dir" && env CRM__TELEMETRY__LOG_FILTER=warn CRM__GATEWAY__RATE_LIMIT__REQUESTS_PER_SECOND=0 "$@" "$bin/crm" serve > serve.log 2>&1 &)
  for _ in $(seq 1 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/50051) 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the suite did not start" >&2; cat "$dir/serve.log" >&2; exit 1
}

stop_suite() {
  pkill -TERM -f "$bin/crm serve" || true
  while pgrep -f "$bin/crm serve" > /dev/null; do sleep 0.2; done
}

bench() { # backend dir where scenario [extra...]
  local backend=$1 dir=$2 where=$3 scenario=$4; shift 4
  local target=http://127.0.0.1:50051
  [ "$where" = direct ] && target=http://127.0.0.1:50061
  "$bin/crm-bench" --data-dir "$dir/data" --target "$target" --scenario "$scenario" --label "$backend $where" \
    --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    --json "$results/$backend-$scenario-$where.json" "$@"
}

rss_kb() { grep VmHWM "/proc/$(pgrep -f "$bin/crm serve" | head -1)/status" | awk '{print $2}'; }

for backend in sqlite postgres; do
  dir=$work/$backend
  env_db=()
  if [ "$backend" = postgres ]; then
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS crm_bench" -c "CREATE DATABASE crm_bench"
    env_db=(CRM__STORE__DATABASE_URL="$PG/crm_bench")
  fi
  start_suite "$backend" "$dir" "${env_db[@]}"
  for where in gateway direct; do
    bench "$backend" "$dir" "$where" health
    bench "$backend" "$dir" "$where" get-lead
    bench "$backend" "$dir" "$where" create-lead
    bench "$backend" "$dir" "$where" log-interaction
    bench "$backend" "$dir" "$where" list-leads --seed-leads "$SEED_LEADS"
  done
  echo "$(rss_kb)" > "$results/$backend-rss-kb"
  stop_suite

  # The storage ceiling: the same inserts, same durability, same concurrency.
  if [ "$backend" = sqlite ]; then
    "$bin/crm-bench" --scenario sqlite-ceiling --label "sqlite ceiling" --sqlite-file "$work/ceiling.db" \
      --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" --json "$results/sqlite-ceiling.json"
  else
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS crm_bench_ceiling" -c "CREATE DATABASE crm_bench_ceiling"
    (cd "$work" && CRM__STORE__DATABASE_URL="$PG/crm_bench_ceiling" CRM__TELEMETRY__LOG_FILTER=warn "$bin/crm" migrate > /dev/null)
    pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T "$SECONDS_TOTAL" -f bench/create_lead.sql "$PG/crm_bench_ceiling" \
      > "$results/postgres-pgbench.txt" 2>&1
    grep -E "^tps|latency average" "$results/postgres-pgbench.txt"
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS crm_bench_ceiling" -c "DROP DATABASE IF EXISTS crm_bench"
  fi
done

mkdir -p docs
python3 bench/report.py "$results" \
  "crm-bench --concurrency $CONCURRENCY --connections $CONNECTIONS --duration $DURATION --warmup $WARMUP; list over $SEED_LEADS leads" \
  > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
