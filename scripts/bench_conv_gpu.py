"""Triton implicit-GEMM convolution against cuDNN on one GPU (issue #15's layers), for
scripts/gpu-check.sh. fp32 inputs with TF32 allowed on both sides (torch's default for cuDNN),
cudnn.benchmark on; per case: the first call of each pass (compile + triton autotune, reported
apart), then the CUDA-event median of 20 calls, forward and training (forward + backward).
Stops starting cases after --max-seconds; writes conv_gpu.json and conv_gpu.md to --out.
    python scripts/bench_conv_gpu.py --out DIR [--max-seconds 60]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fastcnn import ops

# (label, N, C, K, H, W, R, stride, padding): issue #15's table first, then lecture layers
CASES = [
    ("AlexNet conv3 3x3 256->384 13x13", 64, 256, 384, 13, 13, 3, 1, 1),
    ("3x3 64->64 56x56", 32, 64, 64, 56, 56, 3, 1, 1),
    ("AlexNet conv2 5x5 96->256 27x27", 64, 96, 256, 27, 27, 5, 1, 2),
    ("HardNet 3x3 s2 64->128 32x32", 256, 64, 128, 32, 32, 3, 2, 1),
]


def _median_ms(fn, reps=20):
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _first_call_s(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def _case(label, N, C, K, H, W, R, stride, padding):
    x = torch.randn(N, C, H, W, device="cuda")
    w = torch.randn(K, C, R, R, device="cuda") * (C * R * R) ** -0.5
    b = torch.randn(K, device="cuda")
    kw = dict(stride=stride, padding=padding)

    def fast():
        return ops.conv2d(x, w, b, **kw, algo="implicit_gemm", backend="triton")

    def ref():
        return F.conv2d(x, w, b, **kw)

    xg, wg, bg = (t.clone().requires_grad_() for t in (x, w, b))

    def train(conv):
        def step():
            y = conv(xg, wg, bg)
            y.backward(torch.ones_like(y))
        return step

    fast_train = train(lambda *a: ops.conv2d(*a, **kw, algo="implicit_gemm", backend="triton"))
    ref_train = train(lambda *a: F.conv2d(*a, **kw))
    row = {"case": label, "first_call_forward_s": _first_call_s(fast), "first_call_training_s": _first_call_s(fast_train)}
    _first_call_s(ref)
    _first_call_s(ref_train)
    with torch.no_grad():
        row["max_abs_diff_forward"] = (fast() - ref()).abs().max().item()
        row["ref_max_abs"] = ref().abs().max().item()
        row["fastcnn_forward_ms"], row["torch_forward_ms"] = _median_ms(fast), _median_ms(ref)
    row["fastcnn_training_ms"], row["torch_training_ms"] = _median_ms(fast_train), _median_ms(ref_train)
    row["forward_ratio"] = row["torch_forward_ms"] / row["fastcnn_forward_ms"]
    row["training_ratio"] = row["torch_training_ms"] / row["fastcnn_training_ms"]
    P = (H + 2 * padding - R) // stride + 1
    row["fastcnn_forward_tflops"] = 2 * N * K * P * P * C * R * R / (row["fastcnn_forward_ms"] * 1e9)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    start, rows = time.perf_counter(), []
    for case in CASES:
        if time.perf_counter() - start > args.max_seconds:
            rows.append({"case": case[0], "skipped": "time budget spent"})
            continue
        try:
            rows.append(_case(*case))
        except Exception as e:  # noqa: BLE001 - report and go on to the next case
            rows.append({"case": case[0], "error": f"{type(e).__name__}: {e}"[:300]})
        print(json.dumps(rows[-1]), flush=True)
    device = torch.cuda.get_device_name(0)
    (out / "conv_gpu.json").write_text(json.dumps({"device": device, "rows": rows}, indent=1))
    lines = [f"Triton implicit_gemm vs cuDNN on {device} (fp32, TF32 allowed; ms, CUDA-event median of 20; "
             "ratio = torch / fastcnn; first call = compile + autotune)", "",
             "| case | fwd fastcnn | fwd torch | ratio | train fastcnn | train torch | ratio | first call fwd / train s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "forward_ratio" in r:
            lines.append(f"| {r['case']} | {r['fastcnn_forward_ms']:.3f} | {r['torch_forward_ms']:.3f} | "
                         f"{r['forward_ratio']:.2f}x | {r['fastcnn_training_ms']:.3f} | {r['torch_training_ms']:.3f} | "
                         f"{r['training_ratio']:.2f}x | {r['first_call_forward_s']:.1f} / {r['first_call_training_s']:.1f} |")
        else:
            lines.append(f"| {r['case']} | {r.get('error') or r.get('skipped')} |||||||")
    (out / "conv_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
