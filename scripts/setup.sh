#!/usr/bin/env bash
# Creates .venv (if missing) with torch, triton and the test/bench tools, and builds fastcnn into it.
# Idempotent: a second run only rebuilds what changed. Used by both README commands and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[fastcnn] creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# pip's notes about this machine's unused local package folders are noise; errors still show (and
# pipefail still fails the script).
quiet() { grep -v -i "warning: location" || true; }
# torch==2.13.0 is the CPU build on this machine's disk; GPU users install their CUDA build of torch
# into .venv first (see README) and this line then leaves it alone.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  echo "[fastcnn] installing torch==2.13.0 (CPU build)"
  "$VPY" -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | quiet
fi
echo "[fastcnn] installing dependencies"
"$VPY" -m pip install -q --disable-pip-version-check "triton>=3.0,<4" numpy pybind11 "setuptools>=77" wheel \
  pytest hypothesis expecttest pytest-benchmark matplotlib tqdm scikit-learn scikit-image \
  nvidia-cuda-nvrtc 2>&1 | quiet  # nvidia-cuda-nvrtc: lets the tests compile every .cu with NVRTC, as cupy does
echo "[fastcnn] building the C++ extension (editable install; objects kept in build/objects, so a rerun"
echo "          compiles only what changed)"
# -v streams the build's own progress lines ([fastcnn build] ...); pip's chatter is filtered out, and a
# failed build still prints the compiler's error and fails the script (pipefail).
"$VPY" -m pip install -v --disable-pip-version-check --no-build-isolation --no-deps -e . 2>&1 \
  | grep --line-buffered -E '\[fastcnn build\]|error|Error|ERROR' | quiet
"$VPY" -c "import fastcnn, json; print('[fastcnn] backends:', json.dumps({k: v['available'] for k, v in fastcnn.available_backends().items()}))"
