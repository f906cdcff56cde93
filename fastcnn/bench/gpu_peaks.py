"""Datasheet peaks of the GPUs the bench may run on, by device name, so the GPU report can say how far
a kernel is from the hardware: dense tensor-core TF32 and BF16 TFLOP/s (without the 2:4 sparsity
factor NVIDIA's headline numbers include), FP32 (CUDA cores) TFLOP/s and HBM bandwidth in GB/s.

Sources (SXM parts; sparse datasheet figures halved for dense):
- H200: NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200): TF32 989 TFLOPS
  and BF16 1,979 TFLOPS with sparsity -> 494 / 989 dense; FP32 67 TFLOPS; 4.8 TB/s HBM3e.
- H100 SXM: NVIDIA H100 datasheet: TF32 989 / BF16 1,979 with sparsity -> 494 / 989; FP32 67; 3.35 TB/s.
- A100 SXM: NVIDIA A100 datasheet: TF32 156, BF16 312 (dense); FP32 19.5; 80 GB 2,039 GB/s, 40 GB 1,555 GB/s.
Matched in order, first substring wins (so 'H100 PCIe' is not taken for SXM). Unknown GPUs: None.
"""
from __future__ import annotations

from typing import Optional

# (substring of torch.cuda.get_device_name(), tf32, bf16, fp32 TFLOP/s, HBM GB/s)
PEAKS = (
    ("H200", 494.0, 989.0, 67.0, 4800.0),
    ("H100 80GB HBM3", 494.0, 989.0, 67.0, 3350.0),  # SXM5
    ("H100 SXM", 494.0, 989.0, 67.0, 3350.0),
    ("A100-SXM4-80GB", 156.0, 312.0, 19.5, 2039.0),
    ("A100-SXM4-40GB", 156.0, 312.0, 19.5, 1555.0),
)


def peaks(device_name: str) -> Optional[dict]:
    for key, tf32, bf16, fp32, gbs in PEAKS:
        if key.lower() in device_name.lower():
            return {"tf32_tflops": tf32, "bf16_tflops": bf16, "fp32_tflops": fp32, "hbm_gbs": gbs, "matched": key}
    return None
