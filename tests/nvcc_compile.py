"""Compile a fastcnn/kernels/cuda/*.cu file with nvcc for sm_80 and sm_90, warnings as errors (what CI
does for every .cu); skipped with the reason where nvcc is missing."""
import shutil
import subprocess
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parents[1] / "fastcnn" / "kernels" / "cuda"
ARCHS = ["sm_80", "sm_90"]


def compile_cu(name: str, arch: str, tmp_path) -> None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH: CUDA sources not compiled here")
    src = CUDA_DIR / name
    cmd = [nvcc, "-c", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings", f"-I{CUDA_DIR}", str(src),
           "-o", str(tmp_path / (src.stem + ".o"))]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"nvcc failed for {name} ({arch}):\n{result.stderr}"
