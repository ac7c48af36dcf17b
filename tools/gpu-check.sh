#!/usr/bin/env bash
# gpu-check.sh: the one script to run on a machine with an NVIDIA GPU (H100/H200).
# Sets up NVIDIA's OpenCL ICD without root (unless the system has one: a
# private OCL_ICD_VENDORS folder whose nvidia.icd names libnvidia-opencl.so.1),
# prints the card, builds in a fresh folder, runs the tests (poisoned buffers;
# the model again with the 32-bit scatter), the benchmark (table and --json,
# the model's step with each scatter, the evaluation), warploss-train and
# warploss-devices --check, and warploss-train on one rank and (with several
# GPUs and Open MPI) one rank a GPU (tools/bench-ranks.py), each line of
# figures prefixed with the card's name. Bounded: every step has a timeout (about 20 minutes if every step
# used all of its own; a few minutes when they pass).
#
# usage: tools/gpu-check.sh [OUTDIR]   (OUTDIR: where logs and bench.json go; default $OUT or /tmp/warploss-gpu-check)
set -u
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=${1:-${OUT:-/tmp/warploss-gpu-check}}
BUILD=$(mktemp -d /tmp/warploss-gpu-build.XXXXXX)
START=$(date +%s)
mkdir -p "$OUTDIR"
status=0

say() { printf '== %s (t+%ss)\n' "$*" "$(( $(date +%s) - START ))"; }
fail() { printf 'gpu-check: FAILED: %s\n' "$*"; status=1; }

# --- NVIDIA's OpenCL ICD: a private vendors folder, unless the system has one
say "OpenCL ICD"
if [ -z "${OCL_ICD_VENDORS:-}" ] && [ ! -e /etc/OpenCL/vendors/nvidia.icd ]; then
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1/ {print $NF; exit}')
    [ -z "$lib" ] && for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib; do
        [ -e "$d/libnvidia-opencl.so.1" ] && lib="$d/libnvidia-opencl.so.1" && break
    done
    if [ -z "$lib" ]; then
        echo "gpu-check: libnvidia-opencl.so.1 not found (no NVIDIA driver?); keeping the system's OpenCL vendors"
    else
        ICD=$(mktemp -d /tmp/warploss-icd.XXXXXX)
        echo "$lib" > "$ICD/nvidia.icd"
        export OCL_ICD_VENDORS=$ICD
        echo "OCL_ICD_VENDORS=$ICD ($lib)"
    fi
fi
if ! pkg-config --exists clblast 2>/dev/null; then
    echo "gpu-check: no CLBlast (pkg-config clblast); carry Debian's libclblast1 and libclblast-dev unpacked and set PKG_CONFIG_PATH and LD_LIBRARY_PATH"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libOpenCL\.so\.1'; then
    echo "gpu-check: no libOpenCL.so.1 (ICD loader); carry Debian's ocl-icd-libopencl1 unpacked and set LD_LIBRARY_PATH"
fi

say "card"
if command -v nvidia-smi >/dev/null; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv || true
else
    echo "gpu-check: nvidia-smi not found"
fi
if command -v clinfo >/dev/null; then
    timeout 30 clinfo -l || fail "clinfo -l"
else
    echo "gpu-check: clinfo not found (apt-get install clinfo)"
fi
export WARPLOSS_DEVICE=${WARPLOSS_DEVICE:-gpu}
CARD=$(timeout 30 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[ -z "$CARD" ] && CARD="device '$WARPLOSS_DEVICE'"
export WARPLOSS_CACHE_DIR=$BUILD/warploss-cache
echo "card: $CARD; WARPLOSS_DEVICE=$WARPLOSS_DEVICE"

# --- build
say "build in $BUILD"
if ! timeout 120 meson setup "$BUILD" "$ROOT" -Dbuildtype=release > "$OUTDIR/setup.log" 2>&1; then
    tail -20 "$OUTDIR/setup.log"
    fail "meson setup (log: $OUTDIR/setup.log)"
    exit 1
fi
if ! timeout 180 meson compile -C "$BUILD" > "$OUTDIR/build.log" 2>&1; then
    tail -30 "$OUTDIR/build.log"
    fail "meson compile (log: $OUTDIR/build.log)"
    exit 1
fi

# --- tests, on the GPU: the suite CI runs on PoCL and rusticl (every launch
# plan inside test-loss and test-model, the small GPU's included), with
# poisoned buffers; the oclgrind suite needs no GPU and is left to CI
say "tests on $CARD"
if WARPLOSS_POISON=1 timeout 200 meson test -C "$BUILD" --no-suite oclgrind --print-errorlogs > "$OUTDIR/tests.log" 2>&1; then
    grep -E '^(Ok|Fail|Skipped|Timeout):' "$OUTDIR/tests.log" | sed "s/^/[$CARD] /"
    # a device test skips (exit 77) when it finds no device: on a lent GPU that is a failure
    if grep -Eq '^Skipped: +[1-9]' "$OUTDIR/tests.log"; then
        fail "tests were skipped: no OpenCL device found (log: $OUTDIR/tests.log)"
    fi
    # a test that needs an optional feature the card lacks says so
    grep -h '^device lacks: ' "$BUILD/meson-logs/testlog.txt" | sort | uniq -c | sed "s/^/[$CARD] /"
else
    tail -40 "$OUTDIR/tests.log"
    fail "tests (log: $OUTDIR/tests.log)"
fi
say "test-model with the 32-bit scatter on $CARD"
(cd "$BUILD" && WARPLOSS_SCATTER=atomic32 timeout 60 ./tests/test-model > "$OUTDIR/test-model-atomic32.log" 2>&1) \
    && grep -E '^\[  PASSED  \]' "$OUTDIR/test-model-atomic32.log" | sed "s/^/[$CARD] atomic32: /" \
    || { tail -20 "$OUTDIR/test-model-atomic32.log"; fail "test-model with WARPLOSS_SCATTER=atomic32"; }

# --- warploss-devices --check
if [ -x "$BUILD/tools/warploss-devices" ]; then
    say "warploss-devices --check"
    timeout 60 "$BUILD/tools/warploss-devices" --check 2>&1 | sed "s/^/[$CARD] /" || fail "warploss-devices --check"
else
    echo "gpu-check: $BUILD/tools/warploss-devices not built; skipped"
fi

# --- benchmark: the table, then JSON (16M+ scores for the bandwidth goal)
BENCH="$BUILD/tools/warploss-bench"
SHAPES=1024x100,4096x1024,16384x256,65536x64,16384x1024,65536x1024
say "warploss-bench on $CARD"
timeout 120 "$BENCH" --device "$WARPLOSS_DEVICE" --shapes "$SHAPES" --repeat 21 2>&1 | sed "s/^/[$CARD] /" \
    || fail "warploss-bench"
say "warploss-bench --json"
if timeout 120 "$BENCH" --device "$WARPLOSS_DEVICE" --shapes "$SHAPES" --repeat 21 --json > "$OUTDIR/bench.json"; then
    python3 - "$OUTDIR/bench.json" "$CARD" <<'EOF' || fail "reading bench.json"
import json, sys
doc = json.load(open(sys.argv[1]))
print("[%s] device %s: no-offender regime at 16M+ scores, fraction of the card's copy bandwidth (goal >= 0.75):"
      % (sys.argv[2], doc["device"]))
for r in doc["results"]:
    if r["regime"] == "none" and r["rows"] * r["negatives"] >= 16 * 1024 * 1024:
        print("[%s]   %dx%d: %.1f GB/s of %.1f GB/s copy = %.2f" % (
            sys.argv[2], r["rows"], r["negatives"], r["gb_per_s"], r["copy_gb_per_s"],
            r["gb_per_s"] / r["copy_gb_per_s"] if r["copy_gb_per_s"] else 0))
EOF
    echo "JSON: $OUTDIR/bench.json"
else
    fail "warploss-bench --json"
fi

# --- the model's step (goal: >= 200 million positives/s, sampled) and the trainer
say "warploss-bench --model on $CARD"
if timeout 120 "$BENCH" --device "$WARPLOSS_DEVICE" --model --repeat 11 --json > "$OUTDIR/bench-model.json"; then
    python3 - "$OUTDIR/bench-model.json" "$CARD" <<'EOF' || fail "reading bench-model.json"
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["results"]:
    print("[%s] model step %s %s: %.3f ms, %.3g positives/s, %.3g scores/s, %.1fx the C step" % (
        sys.argv[2], r["candidates_mode"], r["regime"], r["seconds"] * 1e3, r["rows_per_s"], r["scores_per_s"],
        r["speedup_vs_c"]))
EOF
else
    fail "warploss-bench --model"
fi
say "warploss-bench --model, 32-bit scatter, on $CARD"
WARPLOSS_SCATTER=atomic32 timeout 90 "$BENCH" --device "$WARPLOSS_DEVICE" --model --repeat 11 2>&1 \
    | sed "s/^/[$CARD] /" || fail "warploss-bench --model (atomic32)"

say "warploss-bench --evaluate on $CARD"
timeout 120 "$BENCH" --device "$WARPLOSS_DEVICE" --evaluate 2>&1 | sed "s/^/[$CARD] /" \
    || fail "warploss-bench --evaluate"

say "warploss-train on $CARD"
timeout 120 "$BUILD/tools/warploss-train" --device "$WARPLOSS_DEVICE" 2>&1 | sed "s/^/[$CARD] /" \
    || fail "warploss-train"

# --- several ranks: one rank, then one rank a GPU (each rank picks its GPU by its
# rank on the machine, so WARPLOSS_DEVICE is unset for them), both rates printed
GPUS=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if command -v mpirun >/dev/null && grep -q "MPI for c found: YES" "$BUILD/meson-logs/meson-log.txt" 2>/dev/null; then
    say "warploss-train on 1 rank and on ${GPUS:-0} ranks on $CARD"
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    RANKS="1"
    [ "${GPUS:-0}" -gt 1 ] && RANKS="1,$GPUS"
    (unset WARPLOSS_DEVICE; timeout 300 python3 "$ROOT/tools/bench-ranks.py" --train "$BUILD/tools/warploss-train" \
        --ranks "$RANKS" --repeat 1 -- --epochs 5) 2>&1 | sed "s/^/[$CARD] /" || fail "bench-ranks"
    [ "${GPUS:-0}" -gt 1 ] || echo "[$CARD] one GPU: no N-rank training (nvidia-smi -L lists ${GPUS:-0})"
else
    echo "gpu-check: no mpirun or a build without MPI (apt-get install openmpi-bin libopenmpi-dev): no rank figures"
fi

say "done"
rm -rf "$BUILD"
[ $status -eq 0 ] && echo "gpu-check: all steps passed on $CARD" || echo "gpu-check: some steps FAILED on $CARD"
exit $status
