"""bench/scripts/recipe_steps.py (docs/results.md's speed column) on a small recipe: it times both sides
of a recipe's own training step and prints a ratio that matches its two times."""
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "scripts" / "recipe_steps.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_prints_both_times_and_their_ratio():
    out = run("lenet", "--rounds", "2", "--steps", "1", "--threads", "1")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| lenet "))
    fast_ms, twin_ms, ratio = re.match(r"\| lenet \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)x \|", row).groups()
    assert float(fast_ms) > 0 and float(twin_ms) > 0
    assert abs(float(ratio) - float(twin_ms) / float(fast_ms)) < 0.01 + 0.01 * float(ratio)
    assert "ISA" in out.stdout


def test_rejects_an_unknown_network_and_bad_counts():
    assert "invalid choice" in run("no_such_net").stderr
    assert "--rounds and --steps must be positive" in run("lenet", "--rounds", "0").stderr
