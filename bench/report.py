#!/usr/bin/env python3
"""Writes docs/benchmarks.md from the results of bench/run.sh."""
import json, os, platform, re, subprocess, sys

results, command = sys.argv[1], sys.argv[2]
CONCURRENCY = re.search(r"--concurrency (\d+)", command).group(1) if re.search(r"--concurrency (\d+)", command) else "?"

def load(name):
    path = os.path.join(results, name)
    return json.load(open(path)) if os.path.exists(path) else None

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
mem = sh("grep MemTotal /proc/meminfo | awk '{print $2}'")
scenarios = ["health", "get-lead", "create-lead", "log-interaction", "list-leads"]
out = ["# " + os.environ.get("TITLE", "Benchmarks"), "",
       "Measured by `bench/run.sh` (not part of CI). Durability stays on: SQLite WAL with",
       "`synchronous=FULL`, PostgreSQL with `synchronous_commit=on`; release build. One",
       "tenant and one user drive all the load, so the fair shares are lifted (rate limits",
       "off, `limits.tenant_calls` and `limits.subject_calls` 4096, at the gateway and the",
       "services); every other setting is the default.", "",
       "## Machine", "",
       f"- CPU: {cpu}, {os.cpu_count()} cores; memory: {int(mem) // 1024 if mem else '?'} MiB",
       f"- {sh('uname -sr')}; {sh('rustc --version')}; {sh('psql --version')}",
       f"- PostgreSQL autovacuum: {open(os.path.join(results, 'postgres-autovacuum')).read().strip() if os.path.exists(os.path.join(results, 'postgres-autovacuum')) else '?'}",
       "- Each service runs in its own `crm serve <service>` process; the load generator shares the cores.", "",
       "## Command", "", f"`{command}`", ""]

def fmt(r):
    if not r:
        return "| - | - | - | - | - | - |"
    l = r["latency_ms"]
    errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
    return f"| {r['throughput_per_second']:.0f} | {l['p50']:.3f} | {l['p90']:.3f} | {l['p99']:.3f} | {l['max']:.1f} | {errors} |"

summary = []
for backend in ["sqlite", "postgres"]:
    out += [f"## {backend}", "", "| scenario | path | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |", "|---|---|---|---|---|---|---|---|"]
    for s in scenarios:
        for where in ["gateway", "direct"]:
            out.append(f"| {s} | {where} " + fmt(load(f"{backend}-{s}-{where}.json")))
    for s in ["get-lead", "list-leads"]:
        for where in ["gateway", "direct"]:
            out.append(f"| {s}, one caller | {where} " + fmt(load(f"{backend}-{s}-one-{where}.json")))
    if backend == "sqlite":
        ceiling = load("sqlite-ceiling.json")
        ceiling_tps = ceiling["throughput_per_second"] if ceiling else None
        out += ["", f"Storage ceiling (the same inserts straight into SQLite, same concurrency): "
                f"{ceiling_tps:.0f} transactions/s." if ceiling_tps else "Storage ceiling: not measured."]
    else:
        text = open(os.path.join(results, "postgres-pgbench.txt")).read() if os.path.exists(os.path.join(results, "postgres-pgbench.txt")) else ""
        m = re.search(r"tps = ([0-9.]+)", text)
        ceiling_tps = float(m.group(1)) if m else None
        out += ["", f"Storage ceiling (pgbench, `bench/create_lead.sql`, same concurrency): {ceiling_tps:.0f} transactions/s." if ceiling_tps else "Storage ceiling: pgbench did not report."]
    rss = open(os.path.join(results, f"{backend}-rss-kb")).read().strip() if os.path.exists(os.path.join(results, f"{backend}-rss-kb")) else ""
    if rss:
        seed = open(os.path.join(results, f"{backend}-seed-rss-kb")).read().strip() if os.path.exists(os.path.join(results, f"{backend}-seed-rss-kb")) else ""
        out += ["", f"Peak resident memory of the leads service (`crm serve leads`) under the load of the scenarios: {int(rss) // 1024} MiB"
                + (f"; while seeding (imports of 10,000 leads per call): {int(seed) // 1024} MiB." if seed else ".")]
    out.append("")

    def tps(s, w):
        r = load(f"{backend}-{s}-{w}.json")
        return r["throughput_per_second"] if r else None
    def p(s, w, q):
        r = load(f"{backend}-{s}-{w}.json")
        return r["latency_ms"][q] if r else None
    rows = []
    for s in scenarios[1:]:
        g, d = tps(s, "gateway"), tps(s, "direct")
        gp, dp = p(s, "gateway", "p50"), p(s, "direct", "p50")
        if g and d:
            rows.append(f"| gateway / direct throughput, {s} | {g / d:.2f} | at least 0.8 |")
        if gp is not None and dp is not None:
            rows.append(f"| gateway p50 added, {s} | {gp - dp:.3f} ms | at most 0.2 ms |")
    g1, d1 = p("get-lead-one", "gateway", "p50"), p("get-lead-one", "direct", "p50")
    if g1 is not None and d1 is not None:
        rows.append(f"| gateway p50 added, GetLead with one caller | {g1 - d1:.3f} ms | at most 0.2 ms |")
    gl, hc = tps("get-lead", "direct"), tps("health", "direct")
    if gl and hc:
        rows.append(f"| GetLead direct / gRPC ceiling (health, direct) | {gl / hc:.2f} | at least 0.5 |")
    cl = tps("create-lead", "direct")
    if cl and ceiling_tps:
        rows.append(f"| CreateLead direct / storage ceiling | {cl / ceiling_tps:.2f} | at least 0.6 (PostgreSQL) |")
    lp, l1 = p("list-leads", "gateway", "p99"), p("list-leads-one", "gateway", "p99")
    if lp is not None:
        rows.append(f"| ListLeads p99 through the gateway, {CONCURRENCY} callers | {lp:.2f} ms | under 10 ms |")
    if l1 is not None:
        rows.append(f"| ListLeads p99 through the gateway, one caller | {l1:.2f} ms | under 10 ms |")
    if rss:
        rows.append(f"| peak RSS of the leads service under load | {int(rss) // 1024} MiB | under 100 MB |")
    out += [f"### Ratios, {backend}", "", "| figure | measured | target |", "|---|---|---|"] + rows + [""]

print("\n".join(out))
