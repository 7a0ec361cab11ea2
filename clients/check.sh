#!/usr/bin/env bash
# The client teams' check (a step of .ci/run): generate the Python and
# TypeScript clients from proto/ the way docs/clients.md says, into a
# temporary directory, type-check a small program against each (mypy,
# tsc --noEmit), build the descriptor set a release attaches, then start the
# suite (`crm serve`, SQLite in a temporary data directory, development
# mode, every port picked by the system) and run both programs against it
# with a `crm token`: clients/typescript/leads.ts under node, and the
# Python client test (clients/python/test_leads_client.py) under pytest.
#
# Tools are pinned in clients/python/requirements.txt and
# clients/typescript/package-lock.json, installed into
# ${CARGO_TARGET_DIR:-target}/ci-clients and reused while those files stay
# the same. The crm binary is ${CARGO_TARGET_DIR:-target}/debug/crm (built
# by `cargo test --workspace`; built here if missing, or CRM_BIN=<path>).
# KEEP=1 keeps the temporary directory (generated code, the suite's log).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
cache="$target/ci-clients"
mkdir -p "$cache"

work=$(mktemp -d)
suite=
cleanup() {
  if [[ -n "$suite" ]]; then
    kill "$suite" 2>/dev/null || true
    wait "$suite" 2>/dev/null || true
  fi
  if [[ -n "${KEEP:-}" ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

key() { sha256sum "$@" | sha256sum | cut -c1-16; }

# Python: grpcio-tools (with its own protoc), mypy-protobuf, the runtime,
# mypy and pytest.
venv="$cache/venv"
want=$(key clients/python/requirements.txt)
if [[ "$(cat "$venv/key" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r clients/python/requirements.txt
  "$venv/bin/pip" check --disable-pip-version-check # every dependency is among the pins
  echo "$want" >"$venv/key"
fi

# TypeScript: buf, protoc-gen-es, protobuf-es, Connect, tsc.
node="$cache/node"
want=$(key clients/typescript/package.json clients/typescript/package-lock.json)
if [[ "$(cat "$node/key" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$node"
  mkdir -p "$node"
  cp clients/typescript/package.json clients/typescript/package-lock.json "$node/"
  (cd "$node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" >"$node/key"
fi
export PATH="$venv/bin:$node/node_modules/.bin:$PATH"
echo "tools: $(buf --version 2>&1 | head -1) buf, $(protoc-gen-es --version), tsc $(tsc --version | cut -d' ' -f2)," \
  "grpcio-tools $("$venv/bin/pip" show grpcio-tools | sed -n 's/^Version: //p'), $(mypy --version | cut -d' ' -f1-2)"

gen="$work/gen"
mkdir -p "$gen/python"

# The descriptor set a release attaches (docs/releasing.md): a plain
# google.protobuf.FileDescriptorSet of every file, its imports and comments.
(cd proto && buf build --as-file-descriptor-set -o "$work/crm.binpb")
python - "$work/crm.binpb" <<'PY'
import sys
from google.protobuf import descriptor_pb2
fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
services = sorted(f"{f.package}.{s.name}" for f in fds.file for s in f.service)
assert "crm.leads.v1.LeadService" in services, services
assert all(f.HasField("source_code_info") for f in fds.file if f.package.startswith("crm."))
print(f"descriptor set: {len(fds.file)} files, services {', '.join(services)}")
PY
cp "$work/crm.binpb" "$target/crm.binpb"
echo "descriptor set kept as $target/crm.binpb"

# Python (docs/clients.md): messages, gRPC stubs, and typed stubs for both.
# google/api comes from googleapis-common-protos at run time.
(cd proto && python -m grpc_tools.protoc -I . \
  --python_out="$gen/python" --grpc_python_out="$gen/python" \
  --mypy_out=quiet:"$gen/python" --mypy_grpc_out=quiet:"$gen/python" \
  $(find crm -name '*.proto' | sort))

# TypeScript (docs/clients.md): proto/buf.gen.yaml, plus google.rpc's error
# details, from the .proto files googleapis-common-protos ships.
(cd proto && buf generate --template buf.gen.yaml -o "$work")
site=$("$venv/bin/python" -c 'import google.rpc.status_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')
mkdir -p "$work/googleapis/google/rpc"
cp "$site/google/rpc/error_details.proto" "$work/googleapis/google/rpc/"
buf generate "$work/googleapis" -o "$gen" --template \
  '{"version":"v2","plugins":[{"local":"protoc-gen-es","out":"ts","opt":["target=ts","import_extension=js"]}]}'
echo "generated: $(find "$gen/python" -name '*_pb2.py' | wc -l) Python modules," \
  "$(find "$gen/ts" -name '*.ts' | wc -l) TypeScript files"

# Type checks: each program must compile against what was generated.
mkdir -p "$work/ts"
cp clients/typescript/leads.ts clients/typescript/tsconfig.json clients/typescript/package.json "$work/ts/"
ln -s "$node/node_modules" "$work/ts/node_modules"
ln -s "$gen/ts" "$work/ts/gen"
(cd "$work/ts" && tsc --noEmit -p .)
echo "tsc --noEmit: clients/typescript/leads.ts compiles against the generated client"
(cd "$work/ts" && tsc -p . --noEmit false --outDir out)
MYPYPATH="$gen/python" mypy --config-file clients/python/mypy.ini --cache-dir "$work/mypy-cache" \
  clients/python/test_leads_client.py

# The suite, on ports of its own, and a token for a sales user.
bin="${CRM_BIN:-$target/debug/crm}"
if [[ ! -x "$bin" ]]; then
  cargo build -p crm --locked
fi
mkdir -p "$work/suite"
ports=()
for name in GATEWAY LEADS OPPORTUNITIES CONTRACTS DELIVERY TICKETS; do
  ports+=("CRM__SERVE__${name}_ADDR=127.0.0.1:0")
done
(cd "$work/suite" && exec env "${ports[@]}" CRM__AUTH__DEVELOPMENT=true \
  CRM__TELEMETRY__LOG_FORMAT=json CRM__TELEMETRY__LOG_FILTER=info \
  "$bin" serve >serve.log 2>&1) &
suite=$!
addr=
deadline=$((SECONDS + 60))
while [[ -z "$addr" ]]; do
  # The address the system picked, from the JSON log line `gateway listening`.
  addr=$(python - "$work/suite/serve.log" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        event = json.loads(line)
        fields = event.get("fields", event)  # flattened or not
    except ValueError:
        continue
    if fields.get("message") == "gateway listening":
        print(fields["addr"])
        break
PY
)
  if [[ -z "$addr" ]]; then
    if ! kill -0 "$suite" 2>/dev/null || ((SECONDS > deadline)); then
      echo "the suite did not start:" >&2
      tail -20 "$work/suite/serve.log" >&2
      exit 1
    fi
    sleep 0.1
  fi
done
# Ready when the gateway reports the leads service SERVING.
until "$bin" health --addr "$addr" --service crm.leads.v1.LeadService --timeout 1 >/dev/null 2>&1; do
  if ! kill -0 "$suite" 2>/dev/null || ((SECONDS > deadline)); then
    echo "the suite at $addr did not become healthy:" >&2
    tail -20 "$work/suite/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
token=$(cd "$work/suite" && "$bin" token --tenant acme --roles sales --subject amy --hours 1 --data-dir data)
echo "suite: gateway at $addr"

echo "TypeScript client (node, Connect gRPC transport):"
CRM_ADDR="http://$addr" CRM_TOKEN="$token" node "$work/ts/out/leads.js"
echo "Python client (pytest):"
CRM_ADDR="$addr" CRM_TOKEN="$token" PYTHONPATH="$gen/python" PYTHONDONTWRITEBYTECODE=1 \
  pytest -p no:cacheprovider -q clients/python/test_leads_client.py
