#!/usr/bin/env bash
# The README's test command: sets everything up, then runs the whole default test suite.
# FASTCNN_SANITIZE_TESTS=1 adds the ASan/UBSan run of the cpu tests (scripts/sanitize.sh) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every Triton kernel compiled ahead of time for sm_80/sm_90 with the OLDEST supported triton too (the
# newest, installed one is covered by tests/backends/triton/test_triton_aot.py in the run below).
echo "[fastcnn] AOT compile check with the oldest supported triton (scripts/triton-min.sh)"
bash scripts/triton-min.sh
status=0
.venv/bin/python -m pytest tests -q "$@" || status=$?
if [ "${FASTCNN_SANITIZE_TESTS:-0}" = "1" ]; then
  echo "[fastcnn] sanitizer run (ASan + UBSan build of the cpu backend)"
  bash scripts/sanitize.sh || status=1
fi
exit $status
