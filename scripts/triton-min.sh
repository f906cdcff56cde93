#!/usr/bin/env bash
# Ahead-of-time compile check against the OLDEST supported triton (pyproject: triton>=3.6): installs
# triton==3.6.0 (no dependencies; CPU-only machines install the wheel fine) into .venv-triton-min/
# and runs tests/backends/triton/test_triton_aot.py with that triton on the compiling process's path (about 1-2 min
# on 2 cores; the installed, newest triton is covered by the default test run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -d .venv-triton-min/triton ] || "$PY" -m pip install -q --no-deps --target .venv-triton-min triton==3.6.0
FASTCNN_AOT_TRITON_PATH="$PWD/.venv-triton-min" exec "$PY" -m pytest tests/backends/triton/test_triton_aot.py -q "$@"
