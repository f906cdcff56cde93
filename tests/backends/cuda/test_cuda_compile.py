"""Every CUDA C++ kernel file compiles with nvcc for sm_80 and sm_90, warnings as errors (CI has
nvcc but no GPU; the launch tests are GPU-marked elsewhere)."""
import shutil
import subprocess
from pathlib import Path

import pytest

from fastcnn.backends.cuda._binaries import include_options

CUDA_DIR = Path(__file__).resolve().parents[3] / "fastcnn" / "kernels" / "cuda"
SOURCES = sorted(CUDA_DIR.glob("*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_cuda_sources():
    assert SOURCES, f"no .cu files under {CUDA_DIR}"


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH: CUDA compile check skipped")
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_compiles_for_sm80_and_sm90(source, tmp_path):
    # One nvcc call builds both architectures (the front end runs once).
    cmd = [NVCC, "-c", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "-std=c++17", "-Werror", "all-warnings", *include_options(), "-o", str(tmp_path / "out.o"), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"nvcc failed for {source.name} (sm_80 + sm_90):\n{result.stderr}"
