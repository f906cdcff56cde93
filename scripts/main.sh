#!/usr/bin/env bash
# The README's main command: sets everything up, runs the demo (every op on every backend against
# the reference) and the quick benchmark suite (report and plots in bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/fastcnn demo
exec .venv/bin/fastcnn bench --quick --out bench/results "$@"
