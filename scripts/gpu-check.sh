#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: build the C++ extension, run the GPU tests, run the quick
# GPU benchmark; logs, a JUnit XML and the bench JSON/Markdown go to one folder. Under 8 minutes on
# one GPU: timeouts 100 s build + 190 s tests + 90 s bench + 75 s conv bench (a step that fails or
# times out is recorded and the next one runs; the benches stop starting cases after 65 / 55 s and
# still write their reports). The build skips the CUDA fatbins (FASTCNN_NO_FATBIN=1: nvcc for every
# .cu would not fit the build's limit); the cuda kernels then compile once with NVRTC, cached on disk. The conv bench: triton implicit_gemm against cuDNN
# (scripts/bench_conv_gpu.py; first call = compile + autotune, reported apart).
#   bash scripts/gpu-check.sh [OUT_DIR]        (default gpu-check/<UTC timestamp>)
# Environment: PYTHON (default: python3), GPU_CHECK_TEST_TIMEOUT (s, default 190),
# GPU_CHECK_BENCH_TIMEOUT (s, default 90), GPU_CHECK_CONV_TIMEOUT (s, default 75), GPU_CHECK_PER_TEST (s, default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-gpu-check/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
STATUS="$OUT/status.txt"
: > "$STATUS"

step() {  # step NAME TIMEOUT_S CMD... : run with a timeout, log to $OUT/NAME.log, record the exit code
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "== $name (limit ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$STATUS"
    tail -n 3 "$OUT/$name.log"
    return 0
}

"$PY" - > "$OUT/environment.txt" 2>&1 <<'PYEOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")
for mod in ("triton", "cupy", "xdist", "pytest_timeout"):
    try:
        m = __import__(mod); print(mod, getattr(m, "__version__", "installed"))
    except ImportError as e:
        print(mod, "missing:", e)
PYEOF
cat "$OUT/environment.txt"
grep -q "^gpu NONE" "$OUT/environment.txt" && echo "warning: torch sees no GPU; the gpu tests will skip"

step build 100 env FASTCNN_NO_FATBIN=1 "$PY" -m pip install --no-build-isolation --no-deps --no-index -e .

PYTEST_ARGS=(tests -m gpu -q -rfE --junitxml="$OUT/junit.xml" -p no:cacheprovider)
"$PY" -c "import xdist" 2>/dev/null && PYTEST_ARGS+=(-n auto)
"$PY" -c "import pytest_timeout" 2>/dev/null && PYTEST_ARGS+=(--timeout "${GPU_CHECK_PER_TEST:-60}")
step tests "${GPU_CHECK_TEST_TIMEOUT:-190}" "$PY" -m pytest "${PYTEST_ARGS[@]}"

step bench "${GPU_CHECK_BENCH_TIMEOUT:-90}" "$PY" -m fastcnn.cli bench --quick --backend cuda --backend triton \
    --budget 0.2 --max-seconds 65 --out "$OUT/bench"

# the table for the README (issue 15's shape: ratio to torch, first call, % of TF32 peak / HBM)
step table 20 bash -c "\"$PY\" scripts/gpu_bench_table.py \"$OUT/bench/results.json\" > \"$OUT/README-table.md\""

step conv "${GPU_CHECK_CONV_TIMEOUT:-75}" "$PY" scripts/bench_conv_gpu.py --out "$OUT/conv" --max-seconds 55

echo "== summary ($OUT)"
[ -s "$OUT/README-table.md" ] && echo "README table: $OUT/README-table.md"
cat "$STATUS"
grep -E "passed|failed" "$OUT/tests.log" | tail -n 1
! grep -qv "rc=0" "$STATUS"
