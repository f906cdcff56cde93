#!/usr/bin/env bash
# The README's test command: sets everything up, then runs the whole default test suite.
# FASTCNN_SANITIZE_TESTS=1 adds the ASan/UBSan run of the cpu tests (scripts/sanitize.sh) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m pytest tests -q "$@" || status=$?
if [ "${FASTCNN_SANITIZE_TESTS:-0}" = "1" ]; then
  echo "[fastcnn] sanitizer run (ASan + UBSan build of the cpu backend)"
  bash scripts/sanitize.sh || status=1
fi
exit $status
