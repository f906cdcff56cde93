"""The GPU side of the bench report without a GPU: the datasheet peak table, the % of TF32 peak / HBM
columns, the first call kept apart, and the README table scripts/gpu-check.sh writes."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fastcnn.bench import report
from fastcnn.bench.gpu_peaks import peaks
from fastcnn.bench.harness import Result, Timing

ROOT = Path(__file__).resolve().parents[2]


def _table_script():
    spec = importlib.util.spec_from_file_location("gpu_bench_table", ROOT / "scripts" / "gpu_bench_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_table_by_device_name():
    h200 = peaks("NVIDIA H200")
    assert (h200["tf32_tflops"], h200["bf16_tflops"], h200["hbm_gbs"]) == (494.0, 989.0, 4800.0)
    assert peaks("NVIDIA A100-SXM4-40GB")["hbm_gbs"] == 1555.0
    assert peaks("NVIDIA GeForce RTX 3090") is None


def _timing(median):
    return Timing(median=median, min=median, max=median, runs=5)


def test_gpu_rows_and_readme_table():
    r = Result("layers", "conv3", "forward", flops=2e12, bytes=4.8e9,
               fastcnn=["cuda[implicit_gemm]"], baselines=["torch"])
    r.timings = {"cuda[implicit_gemm]": _timing(0.01), "torch": _timing(0.005)}
    r.first_call_s = {"cuda[implicit_gemm]": 0.8, "torch": 0.1}
    machine = {"device": "NVIDIA H200", "gpu_peaks": peaks("NVIDIA H200"), "torch": "x", "triton": "y",
               "commit": "c", "date": "d"}
    row = report.rows([r], machine)[0]
    assert row["best"] == "cuda[implicit_gemm]"
    assert abs(row["% TF32 peak"] - 100 * 200e3 / 494e3) < 1e-9  # 2e12 / 0.01 s = 200 TFLOP/s
    assert abs(row["% HBM"] - 100 * 480 / 4800) < 1e-9
    assert row["first call s"] == 0.8
    text = _table_script().table(report.to_json([r], machine, {"left_out": ["x forward"]}))
    assert "| conv3 | forward | cuda[implicit_gemm] | 10.000 ms | 5.000 ms | 0.50x | 0.80 s | 200.00 (40.5%) | 480 (10.0%) |" in text
    assert "TF32 494.0 / BF16 989.0" in text and "Not run (time budget): x forward" in text
