#!/usr/bin/env bash
# The README's test command: sets everything up, then runs the whole default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every Triton kernel compiled ahead of time for sm_80/sm_90 with the OLDEST supported triton too (the
# newest, installed one is covered by tests/test_triton_aot.py in the run below).
echo "[fastcnn] AOT compile check with the oldest supported triton (scripts/triton-min.sh)"
bash scripts/triton-min.sh
exec .venv/bin/python -m pytest tests -q "$@"
