#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root (where the `run` tool starts), after benchmarks/gpu/fetch.sh
# here.  Installs the carried packages, checks the GPU, measures (BENCH=1) serial vs batched HFSL
# rounds with the GPU's utilisation sampled every 200 ms (benchmarks/drivers.py) and pre-training
# against a bare loop (benchmarks/pretrain.py), then runs `ecogen run table3`, `ecogen run baselines`
# and `ecogen report`, each under `timeout` within one overall budget, and puts into $OUT:
#   bench.json       drivers, utilisation per driver, pretrain (also inside results.tar.gz)
#   acceptance.log   everything printed          timings.tsv     step, exit code, seconds, limit
#   results.tar.gz   reports/, env.txt, gpu.csv (nvidia-smi every 5 s), timings.tsv, logs/*.log,
#                    runs/*/{metrics,plots,emissions}, runs/*/data.dvc
#   mlflow.db.gz     the MLflow store the report was built from (no mlruns/ artifacts: models)
# Packages, first found: $SITE/.ecogen-site-ok (a tree a previous call installed, two-call mode),
# .gpu-pack/site.tar.xz (one-call mode), .whl/*.whl (pip, as in the device README).
# Env: BUDGET (s, default 540: keep the run tool's timeout_s ≥ BUDGET + 30), PIPELINES (default
# "table3 baselines"), TIMEOUT_<pipeline> (s, per pipeline; default table3 200, else what is left),
# RESTORE_DB (a carried mlflow.db.gz of an earlier call, e.g. .gpu-prev/mlflow.db.gz: table3's runs
# for a second call that runs only baselines and the report),
# TIMEOUT_report (60), BENCH (1: the benchmarks first; 0: none), TIMEOUT_drivers (90),
# PLACED (1: `quick` with pre-training placed on a GPU worker, issue 21; 0: not), TIMEOUT_placed (150),
# TIMEOUT_pretrain (60), BENCH_ACCELERATOR (cuda), BENCH_TINY (1: tiny model, a CPU smoke run),
# SHARED_PREFECT (1: one Prefect server, started before the benchmarks, serves
# every pipeline, instead of a temporary one per `ecogen run`), ECOGEN_ARGS (extra args for every `ecogen run`,
# e.g. "--profile cpu", or "--trials-at-once 4": more trials side by side fill the GPU; pipelines.yaml says 2),
# SITE (default /tmp/site), DATA_ROOT (default .data/fashion-mnist), INSTALL_ONLY=1 (stop after the
# install: two-call mode), ALLOW_CPU=1 (go on without CUDA: simulations only).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
T0=$SECONDS
BUDGET=${BUDGET:-540}
RESERVE=35 # seconds kept for packing the results and for timeout -k 10 overrunning a limit
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
DATA_ROOT=${DATA_ROOT:-$ROOT/.data/fashion-mnist}
PIPELINES=${PIPELINES:-table3 baselines}
OUTDIR=${OUT:-$ROOT/.gpu-out}
STAGE=$(mktemp -d)
mkdir -p "$OUTDIR" "$STAGE/logs"

left() { echo $((BUDGET - RESERVE - (SECONDS - T0))); }

install_packages() {
  local t=$SECONDS
  if [ -f "$SITE/.ecogen-site-ok" ]; then
    echo "packages: already installed in $SITE"
  elif [ -f .gpu-pack/site.tar.xz ]; then
    echo "packages: unpacking .gpu-pack/site.tar.xz into $SITE"
    rm -rf "$SITE" && mkdir -p "$SITE" &&
      "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
        .gpu-pack/site.tar.xz "$SITE" || return 1
  elif compgen -G '.whl/*.whl' >/dev/null; then
    echo "packages: pip install .whl/*.whl into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl ||
      return 1
  else
    echo "error: no packages carried: carry .gpu-pack (or .whl), see benchmarks/gpu/README.md"
    return 1
  fi
  touch "$SITE/.ecogen-site-ok"
  echo "packages ready in $((SECONDS - t)) s"
}

check_environment() {
  {
    echo "date: $(date -u +%FT%TZ)   host: $(hostname)   budget: ${BUDGET}s"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, "
          f"capability {p.major}.{p.minor}; bf16 {torch.cuda.is_bf16_supported()}")
for name in ("lightning", "peft", "transformers", "numpy", "pandas", "pydantic", "prefect",
             "mlflow-skinny", "dvc", "codecarbon", "sqlalchemy", "nvidia-ml-py"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
import codecarbon, dvc.repo, mlflow.pytorch, prefect, pydantic  # noqa: F401  fail here, not mid-run
EOF
  } 2>&1 | tee "$STAGE/env.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || [ "${ALLOW_CPU:-0}" = 1 ] ||
    { echo "error: torch sees no CUDA device (ALLOW_CPU=1 to go on)"; return 1; }
}

# step NAME CAP CMD...: runs CMD under timeout (the smaller of CAP and what the budget has left),
# logs to logs/NAME.log, appends to timings.tsv; returns CMD's exit code (124/137: timed out).
step() {
  local name=$1 cap=$2 t rc start
  shift 2
  t=$(left)
  [ "$cap" -lt "$t" ] && t=$cap
  if [ "$t" -lt 20 ]; then
    echo "== $name: skipped, ${t}s of the budget left"
    printf '%s\tskipped\t0\t%s\n' "$name" "$t" >>"$STAGE/timings.tsv"
    return 124
  fi
  echo "== $name (limit ${t}s): $*"
  start=$SECONDS
  # SIGINT, not SIGTERM: Python raises KeyboardInterrupt, so ecogen marks the interrupted runs
  # KILLED / FAILED (the report then uses the trials that finished, and --resume can continue).
  timeout -s INT -k 20 "$t" "$@" 2>&1 | tee "$STAGE/logs/$name.log"
  rc=${PIPESTATUS[0]}
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - start)) "$t" >>"$STAGE/timings.tsv"
  echo "== $name: exit $rc after $((SECONDS - start))s"
  return "$rc"
}

pack_results() {
  cp "$STAGE/timings.tsv" "$OUTDIR/timings.tsv" 2>/dev/null
  [ -f mlflow.db ] && gzip -c mlflow.db >"$OUTDIR/mlflow.db.gz"
  local extra=()
  for d in runs/*/metrics runs/*/plots runs/*/emissions runs/*/data.dvc; do [ -e "$d" ] && extra+=("$d"); done
  tar -czf "$OUTDIR/results.tar.gz" -C "$STAGE" . -C "$ROOT" reports "${extra[@]}" 2>/dev/null
  if [ "$(stat -c %s "$OUTDIR/results.tar.gz")" -gt $((15 * 1048576)) ]; then # 16 MiB per file comes back
    extra=()
    for d in runs/*/metrics runs/*/emissions; do [ -e "$d" ] && extra+=("$d"); done
    tar -czf "$OUTDIR/results.tar.gz" -C "$STAGE" . -C "$ROOT" reports "${extra[@]}" 2>/dev/null
  fi
  ls -l "$OUTDIR"
}

PREFECT_PID=""
# One Prefect server for every pipeline of this call, started while the benchmarks run (a temporary
# server per `ecogen run` took 30 s to start on the H200 machine).
start_prefect() {
  "$PY" -m prefect server start --host 127.0.0.1 --port 4207 >"$STAGE/logs/prefect-server.log" 2>&1 &
  PREFECT_PID=$!
  export PREFECT_API_URL=http://127.0.0.1:4207/api
  echo "prefect: server starting (pid $PREFECT_PID)"
}

wait_prefect() {
  local t=$SECONDS
  until "$PY" -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' "$PREFECT_API_URL/health" 2>/dev/null; do
    if [ $((SECONDS - t)) -gt 90 ] || ! kill -0 "$PREFECT_PID" 2>/dev/null; then
      echo "prefect: shared server not up; each run starts its own"
      unset PREFECT_API_URL
      return 0
    fi
    sleep 1
  done
  echo "prefect: shared server ready ($((SECONDS - t)) s waited after the benchmarks)"
}

# The GPU figures the issue asks for: batched vs serial HFSL rounds (>= 5x) with mean utilisation
# while each driver runs (>= 50 % for batched), and pre-training vs a bare loop (within 1.5x).
benchmarks() {
  local fine=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
      >"$STAGE/gpu-fine.csv" 2>&1 &
    fine=$!
  fi
  local acc=${BENCH_ACCELERATOR:-cuda} tiny=()
  [ "${BENCH_TINY:-0}" = 1 ] && tiny=(--tiny) # a smoke run of this script on a CPU
  step bench-drivers "${TIMEOUT_drivers:-90}" "$PY" -m benchmarks.drivers --accelerator "$acc" --rounds 3 \
    --repeats 1 --bare-steps 100 --out "$STAGE/drivers.json" "${tiny[@]}"
  [ -n "$fine" ] && kill "$fine" 2>/dev/null
  [ -f "$STAGE/drivers.json" ] && [ -n "$fine" ] &&
    "$PY" benchmarks/gpu/utilisation.py "$STAGE/gpu-fine.csv" "$STAGE/drivers.json" >"$STAGE/utilisation.json"
  step bench-pretrain "${TIMEOUT_pretrain:-60}" "$PY" -m benchmarks.pretrain --accelerator "$acc" --batch 1024 \
    --steps 60 --out "$STAGE/pretrain.json" "${tiny[@]}"
  "$PY" - "$STAGE" >"$OUTDIR/bench.json" <<'EOF'
import json, pathlib, sys
stage = pathlib.Path(sys.argv[1])
out = {}
for name in ("drivers", "utilisation", "pretrain"):
    f = stage / f"{name}.json"
    if f.is_file():
        data = json.loads(f.read_text())
        out[name] = data if name == "utilisation" else data.get(name, data)
print(json.dumps(out, indent=2))
EOF
  cat "$OUTDIR/bench.json"
}

# Issue 21: pre-training placed on a GPU worker.  An `mlflow server` (artifact proxy) and a process
# work pool `gpu` with one worker pinned to GPU 0 (CUDA_VISIBLE_DEVICES), started in an empty folder;
# `ecogen run quick --place pretrain=gpu` from here; the stage runs' worker tags and the pretrain
# run's accelerator go to placed.json.  Needs the shared Prefect server (SHARED_PREFECT=1).
placed_gpu() {
  [ -n "${PREFECT_API_URL:-}" ] || { echo "== placed: skipped (no shared Prefect server)"; return 0; }
  local store=$STAGE/mlflow-placed machine=$STAGE/gpu-machine mlf wrk rc
  mkdir -p "$store" "$machine"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$PY" -m mlflow server --backend-store-uri "sqlite:///$store/mlflow.db" \
    --artifacts-destination "$store/artifacts" --host 127.0.0.1 --port 5097 --workers 1 \
    >"$STAGE/logs/mlflow-placed.log" 2>&1 &
  mlf=$!
  "$PY" -m prefect work-pool create gpu --type process >/dev/null 2>&1
  (cd "$machine" && CUDA_VISIBLE_DEVICES=0 PREFECT_WORKER_QUERY_SECONDS=1 exec "$PY" -m prefect worker start \
    --pool gpu --name gpu0 --type process >"$STAGE/logs/worker-gpu0.log" 2>&1) &
  wrk=$!
  until "$PY" -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:5097/health", timeout=2)' 2>/dev/null; do
    sleep 1
  done
  MLFLOW_TRACKING_URI=http://127.0.0.1:5097 step placed-quick "${TIMEOUT_placed:-150}" "$PY" -m ecogen.cli run quick \
    --place pretrain=gpu --set "data.root=$DATA_ROOT"
  rc=$?
  "$PY" - >"$STAGE/placed.json" <<'EOF'
import json
from mlflow import MlflowClient
c = MlflowClient("http://127.0.0.1:5097")
runs = c.search_runs([e.experiment_id for e in c.search_experiments()], "tags.`ecogen.kind` = 'stage'")
print(json.dumps({r.data.tags["ecogen.stage"]: {"worker": r.data.tags.get("ecogen.worker"),
      "accelerator": r.data.params.get("accelerator"), "duration_s": r.data.metrics.get("duration_s")}
      for r in runs}, indent=2))
EOF
  cat "$STAGE/placed.json"
  kill "$wrk" 2>/dev/null
  sleep 2
  kill "$mlf" 2>/dev/null
  return "$rc"
}

main() {
  local status=0 rc p cap_var def mon="" extra=()
  echo "acceptance: $ROOT, pipelines: $PIPELINES, ECOGEN_ARGS: ${ECOGEN_ARGS:-}"
  printf 'step\texit\tseconds\tlimit\n' >"$STAGE/timings.tsv"
  local t=$SECONDS
  install_packages || return 3
  printf 'install\t0\t%s\t-\n' $((SECONDS - t)) >>"$STAGE/timings.tsv"
  [ "${INSTALL_ONLY:-0}" = 1 ] && return 0
  export PYTHONPATH="$SITE:$ROOT" PYTHONUNBUFFERED=1
  export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 # first start compiles the whole server
  export PREFECT_HOME=$ROOT/.prefect                           # git-ignored
  unset MLFLOW_TRACKING_URI PREFECT_API_URL                      # → sqlite:///<repo>/mlflow.db, temporary server
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$DATA_ROOT/$f.gz" ] || [ -f "$DATA_ROOT/$f" ] ||
      { echo "error: $DATA_ROOT/$f(.gz) missing: carry .data (fetch.sh)"; return 3; }
  done
  # The copy has no .git: ecogen's DVC step then opens the repo without SCM by itself.
  if [ -n "${RESTORE_DB:-}" ]; then # a second call: the MLflow store the first call brought back
    [ -f "$RESTORE_DB" ] || { echo "error: RESTORE_DB=$RESTORE_DB not found (carry its folder)"; return 3; }
    gzip -dc "$RESTORE_DB" >mlflow.db || return 3
    echo "restored mlflow.db from $RESTORE_DB"
  fi
  check_environment || return 4
  step validate 60 "$PY" -m ecogen.cli validate || return 4
  [ "${SHARED_PREFECT:-1}" = 1 ] && start_prefect
  [ "${BENCH:-1}" = 1 ] && benchmarks
  [ -n "$PREFECT_PID" ] && wait_prefect
  [ "${PLACED:-1}" = 1 ] && placed_gpu

  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used,power.draw,clocks.sm \
      --format=csv -l 5 >"$STAGE/gpu.csv" 2>&1 &
    mon=$!
  fi
  read -ra extra <<<"${ECOGEN_ARGS:-}"
  for p in $PIPELINES; do
    cap_var=TIMEOUT_$p
    case $p in table3) def=200 ;; *) def=600 ;; esac # baselines ≈ 2.5 × table3's client steps
    step "run-$p" "${!cap_var:-$def}" "$PY" -m ecogen.cli run "$p" --set "data.root=$DATA_ROOT" "${extra[@]}"
    rc=$?
    [ "$status" -eq 0 ] && status=$rc
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ]; then
      echo "== $p failed (exit $rc): the remaining pipelines are skipped"
      break
    fi
  done
  [ -n "$mon" ] && kill "$mon" 2>/dev/null
  step report "${TIMEOUT_report:-60}" "$PY" -m ecogen.cli report || { [ "$status" -eq 0 ] && status=5; }
  echo "== timings"
  column -t "$STAGE/timings.tsv" 2>/dev/null || cat "$STAGE/timings.tsv"
  return "$status"
}

main 2>&1 | tee "$OUTDIR/acceptance.log"
status=${PIPESTATUS[0]}
pkill -f "prefect server start --host 127.0.0.1 --port 4207" 2>/dev/null # main ran in a subshell
pack_results >>"$OUTDIR/acceptance.log" 2>&1
echo "acceptance: exit $status after $((SECONDS - T0))s; results in $OUTDIR"
exit "$status"
