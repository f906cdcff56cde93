#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the cpu backend: builds an instrumented copy of
# the C++ extension in its own folders (build/asan, build/asan-lib: the shipped fastcnn/_C*.so is not
# touched), lays the Python package and the tests beside it in a temporary folder, and runs the cpu
# tests on small shapes there. Any finding aborts the run (halt_on_error / -fno-sanitize-recover): the
# script then fails.
#
# Only the kernel copy for this CPU's best ISA (the one the tests run) is instrumented; the other two
# copies are linked from the shipped build's objects (build/objects, built by scripts/setup.sh), and
# the tests' runs on those copies are deselected. FASTCNN_SANITIZE_ALL_ISAS=1 instruments all three.
#
# Usage: bash scripts/sanitize.sh [pytest args: replace the default CI subset]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROOT=$PWD
case "$PY" in /*) ;; *) PY="$ROOT/$PY" ;; esac  # (not realpath: a venv's python is a symlink)
ISA=$("$PY" -c "from fastcnn import _C; print(_C.best_isa())")
if [ "${FASTCNN_SANITIZE_ALL_ISAS:-0}" = "1" ]; then
  ISAS=avx512,avx2,generic
  SKIP_ISAS=""
else
  ISAS=$ISA
  SKIP_ISAS=$(for i in avx512 avx2 generic; do [ "$i" = "$ISA" ] || printf ' and not %s' "$i"; done)
fi
start=$(date +%s)
echo "[sanitize] building the instrumented extension (kernel copies: $ISAS)"
FASTCNN_SANITIZE=address,undefined FASTCNN_SANITIZE_ISAS=$ISAS FASTCNN_BUILD_TEMP="$ROOT/build/asan" \
  FASTCNN_PLAIN_OBJECTS="$ROOT/build/objects" \
  "$PY" setup.py -q build_ext --build-lib "$ROOT/build/asan-lib" 2>&1 | grep -E "\[fastcnn build\]|error" || true
SO=$(ls "$ROOT"/build/asan-lib/fastcnn/_C*.so)
echo "[sanitize] build: $(( $(date +%s) - start )) s"
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
cp -r fastcnn tests pyproject.toml "$RUN"/
rm -f "$RUN"/fastcnn/_C*.so
cp "$SO" "$RUN"/fastcnn/
# A Python extension needs the ASan runtime loaded first; Python itself leaks by design.
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
cd "$RUN"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_odr_violation=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The CI subset: every csrc/kernels file is reached (docs/reliability.md lists which test reaches
# which file), on small shapes: the property-based fuzz tests of every op family, the edge cases and
# non-finite values, and the files of the kernels the fuzz tests do not call (the convolution
# algorithms, dropout, the element-wise math, the cpu-only probe), and the eager op layer's C++ ops
# (csrc/torchops/: their pointer and size arithmetic, forward and backward).
if [ "$#" -eq 0 ]; then
  set -- tests/reliability/test_fuzz_ops.py tests/reliability/test_edge_cases.py tests/reliability/test_nonfinite.py \
    tests/backends/cpu/test_conv_direct.py tests/backends/cpu/test_conv_fft.py tests/backends/cpu/test_conv_winograd.py tests/ops/test_dropout.py \
    tests/backends/cpu/test_vmath.py tests/ops/test_pad.py tests/ops/test_norm_groups.py tests/reliability/test_probe_kernels.py \
    tests/ops/test_eager_ops.py tests/ops/test_eager_conv.py tests/ops/test_spectral_norm.py
fi
tstart=$(date +%s)
LD_PRELOAD="$LIBASAN $LIBUBSAN" FASTCNN_BACKEND=cpu "$PY" -m pytest -q -x -p no:cacheprovider -m "not slow" \
  -k "not triton and not cuda$SKIP_ISAS" "$@"
echo "[sanitize] tests: $(( $(date +%s) - tstart )) s, total $(( $(date +%s) - start )) s"
