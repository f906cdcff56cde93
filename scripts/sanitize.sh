#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the cpu backend: builds an instrumented copy of
# the C++ extension in its own folders (build/asan, build/asan-lib: the shipped fastcnn/_C*.so is not
# touched), lays the Python package and the tests beside it in a temporary folder, and runs the cpu
# tests on small shapes there. Any finding aborts the run (halt_on_error / -fno-sanitize-recover): the
# script then fails. Usage: bash scripts/sanitize.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROOT=$PWD
case "$PY" in /*) ;; *) PY="$ROOT/$PY" ;; esac  # (not realpath: a venv's python is a symlink)
FASTCNN_SANITIZE=address,undefined FASTCNN_BUILD_TEMP="$ROOT/build/asan" \
  "$PY" setup.py -q build_ext --build-lib "$ROOT/build/asan-lib" 2>&1 | grep -E "\[fastcnn build\]|error" || true
SO=$(ls "$ROOT"/build/asan-lib/fastcnn/_C*.so)
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
# The cpu op tests on their small shapes: every csrc/kernels file is reached (tests/test_build_isa.py
# and the triton/cuda ones need no sanitizer).
LD_PRELOAD="$LIBASAN $LIBUBSAN" FASTCNN_BACKEND=cpu "$PY" -m pytest -q -x -p no:cacheprovider \
  tests/test_activation.py tests/test_conv.py tests/test_conv_direct.py tests/test_conv_fft.py \
  tests/test_gemm.py tests/test_loss.py tests/test_norm.py tests/test_pool.py tests/test_resample.py \
  tests/test_softmax.py tests/test_dropout.py tests/test_vmath.py tests/reliability/test_edge_cases.py \
  tests/reliability/test_nonfinite.py -k "not triton and not cuda" "$@"
