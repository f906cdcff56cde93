#!/usr/bin/env bash
# The README's test command: sets everything up, then runs the whole default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests -q "$@"
