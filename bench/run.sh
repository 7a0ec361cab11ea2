#!/usr/bin/env bash
# Runs the benchmarks on SQLite and on PostgreSQL and writes
# docs/benchmarks.md. Not part of CI. Tunables (environment):
#   DURATION=10s WARMUP=2s CONCURRENCY=32 CONNECTIONS=4 SEED_LEADS=100000
#   OUT=docs/benchmarks.md, where the report goes; TITLE, its heading
#   BIN_DIR=<dir with crm and crm-bench>, to measure other binaries (an
#     earlier commit's, for a before/after) instead of building these
#   BACKENDS="sqlite postgres"; SCENARIOS="health get-lead create-lead
#     log-interaction list-leads"; SUITE_ENV="KEY=value ...", more settings
#   RESULTS=<dir>: keep the raw results there (the report reads all of it)
# bench/noisy.sh runs the noisy-neighbour scenario apart (fair shares on).
#
# PostgreSQL runs as production would run it: autovacuum on (turned on for
# the run and restored after, if this machine has it off), and the tables
# analysed after seeding, as autovacuum would have done on a live system.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-32}
CONNECTIONS=${CONNECTIONS:-4}
SEED_LEADS=${SEED_LEADS:-100000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
SECONDS_TOTAL=${DURATION%s}

OUT=${OUT:-docs/benchmarks.md}

if [ -n "${BIN_DIR:-}" ]; then
  bin=$(cd "$BIN_DIR" && pwd)
else
  cargo build --release -p crm -p crm-bench
  bin=$PWD/target/release
fi
work=$(mktemp -d)
results=${RESULTS:-$work/results}
mkdir -p "$results"
autovacuum_was=$(psql "$PG/postgres" -Atc "SHOW autovacuum" 2>/dev/null || echo on)
set_autovacuum() {
  psql "$PG/postgres" -qc "ALTER SYSTEM SET autovacuum = $1" -c "SELECT pg_reload_conf()" > /dev/null
}
cleanup() {
  pkill -f "$bin/crm serve" 2>/dev/null || true
  [ "$autovacuum_was" = off ] && set_autovacuum off
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # port log
  for _ in $(seq 1 300); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; cat "$2" >&2; exit 1
}

# One tenant and one user drive all the load: their fair shares (policies,
# not costs) are lifted; everything else is as configured by default.
ONE_TENANT=(CRM__GATEWAY__RATE_LIMIT__REQUESTS_PER_SECOND=0 CRM__SERVER__RATE_LIMIT__REQUESTS_PER_SECOND=0)
for side in GATEWAY SERVER; do
  for cap in TENANT_CALLS SUBJECT_CALLS; do ONE_TENANT+=("CRM__${side}__LIMITS__${cap}=4096"); done
done

start_suite() { # backend dir [env...]
  local dir=$2; shift 2
  mkdir -p "$dir"
  # Each service in its own process, as deployed, so that each one's memory
  # is its own. One tenant drives all the load: its rate limit (a policy,
  # not a cost) is off; everything else is as configured by default.
  # The addresses are spelled out for binaries from before the services
  # found each other by default.
  cat > "$dir/bench.toml" <<'TOML'
[gateway.upstreams]
"crm.leads.v1" = "http://127.0.0.1:50061"
"crm.opportunities.v1" = "http://127.0.0.1:50062"
[leads]
opportunities_url = "http://127.0.0.1:50062"
TOML
  for component in leads opportunities gateway; do
    (cd "$dir" && env CRM__TELEMETRY__LOG_FILTER=warn "${ONE_TENANT[@]}" "$@" \
      "$bin/crm" serve "$component" --config bench.toml > "$component.log" 2>&1 &)
    case $component in
      leads) wait_port 50061 "$dir/leads.log" ;;
      opportunities) wait_port 50062 "$dir/opportunities.log" ;;
      gateway) wait_port 50051 "$dir/gateway.log" ;;
    esac
  done
}

stop_suite() {
  pkill -TERM -f "$bin/crm serve" || true
  while pgrep -f "$bin/crm serve" > /dev/null; do sleep 0.2; done
}

bench() { # backend dir where scenario [extra...]
  local backend=$1 dir=$2 where=$3 scenario=$4; shift 4
  bench_at "$CONCURRENCY" "$CONNECTIONS" "$backend" "$dir" "$where" "$scenario" "$scenario" "$@"
}

bench_at() { # concurrency connections backend dir where scenario result-name [extra...]
  local concurrency=$1 connections=$2 backend=$3 dir=$4 where=$5 scenario=$6 name=$7; shift 7
  local target=http://127.0.0.1:50051
  [ "$where" = direct ] && target=http://127.0.0.1:50061
  "$bin/crm-bench" --data-dir "$dir/data" --target "$target" --scenario "$scenario" --label "$backend $where" \
    --concurrency "$concurrency" --connections "$connections" --duration "$DURATION" --warmup "$WARMUP" \
    --json "$results/$backend-$name-$where.json" "$@"
}

rss_kb() { # component: its peak resident memory since the last reset
  grep VmHWM "/proc/$(pgrep -f "$bin/crm serve $1" | head -1)/status" | awk '{print $2}'
}
reset_peak() { # component: the peak starts again from the current size
  echo 5 > "/proc/$(pgrep -f "$bin/crm serve $1" | head -1)/clear_refs"
}

for backend in ${BACKENDS:-sqlite postgres}; do
  dir=$work/$backend
  # shellcheck disable=SC2206 # SUITE_ENV is a list of KEY=value words
  env_db=(${SUITE_ENV:-})
  if [ "$backend" = postgres ]; then
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS crm_bench" -c "CREATE DATABASE crm_bench"
    [ "$autovacuum_was" = off ] && set_autovacuum on
    echo "$autovacuum_was" > "$results/postgres-autovacuum"
    env_db+=(CRM__STORE__DATABASE_URL="$PG/crm_bench")
  fi
  start_suite "$backend" "$dir" "${env_db[@]}"
  # Seed the leads for ListLeads straight into the leads service (a bulk
  # import is no scenario, and the gateway caps a call's deadline), growing
  # tenfold per step and analysed after each, as autovacuum would.
  seeded=1000
  while :; do
    "$bin/crm-bench" --data-dir "$dir/data" --target http://127.0.0.1:50061 --scenario list-leads \
      --seed-leads "$seeded" --concurrency 1 --connections 1 --duration 1s --warmup 0s > /dev/null
    [ "$backend" = postgres ] && psql "$PG/crm_bench" -qc "ANALYZE"
    [ "$seeded" -ge "$SEED_LEADS" ] && break
    seeded=$((seeded * 10 > SEED_LEADS ? SEED_LEADS : seeded * 10))
  done
  # Memory is reported for the load, and for the bulk import apart.
  rss_kb leads > "$results/$backend-seed-rss-kb"
  reset_peak leads
  for where in gateway direct; do
    for scenario in ${SCENARIOS:-health get-lead create-lead log-interaction list-leads}; do
      bench "$backend" "$dir" "$where" "$scenario" --seed-leads "$SEED_LEADS"
      # Service time without queueing, and what the gateway adds to it: one caller.
      case $scenario in
        get-lead|list-leads)
          bench_at 1 1 "$backend" "$dir" "$where" "$scenario" "$scenario-one" --seed-leads "$SEED_LEADS" ;;
      esac
    done
  done
  echo "$(rss_kb leads)" > "$results/$backend-rss-kb"
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

mkdir -p "$(dirname "$OUT")"
python3 bench/report.py "$results" \
  "crm-bench --concurrency $CONCURRENCY --connections $CONNECTIONS --duration $DURATION --warmup $WARMUP; list over $SEED_LEADS leads" \
  > "$OUT"
echo "wrote $OUT"
