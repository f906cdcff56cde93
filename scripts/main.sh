#!/usr/bin/env bash
# The README's main command: sets everything up, trains the lecture's fast classic networks on shipped
# data with fastcnn kernels (progress bars; metrics, report and plots in runs/main/NAME/), runs the
# demo (every op on every backend against the reference) and the quick benchmark (bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
runs=()
for name in perceptron lenet alexnet conv_autoencoder vae; do
  echo "[fastcnn] training $name (small, the recipe of docs/training.md)"
  .venv/bin/fastcnn train "$name" --out "runs/main/$name"
  runs+=("runs/main/$name")
done
echo "[fastcnn] what the networks reached (runs/main/*/metrics.json):"
.venv/bin/python -m fastcnn.train.summary "${runs[@]}"
.venv/bin/fastcnn demo
exec .venv/bin/fastcnn bench --quick --out bench/results "$@"
