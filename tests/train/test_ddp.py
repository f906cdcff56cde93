"""torchrun with 2 processes (gloo on CPU) ends with the parameters of one process on the same global batch."""
import os
import subprocess
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", FASTCNN_BACKEND="cpu")
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    args = ["lenet", "--steps", "4", "--batch-size", "32", "--dropout", "0", "--shift", "0", "--no-progress", "--threads", "1"]
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          "-m", "fastcnn.train", *args, "--out", str(tmp_path / "ddp")], tmp_path)
    _run([sys.executable, "-m", "fastcnn.train", *args, "--out", str(tmp_path / "one")], tmp_path)
    ddp = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert ddp["run"]["world_size"] == 2 and one["run"]["world_size"] == 1
    start = {k: v for k, v in one["nets"]["model"].items()}
    for k, v in ddp["nets"]["model"].items():
        torch.testing.assert_close(v, start[k], msg=lambda m: f"{k}: {m}")
