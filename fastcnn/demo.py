"""`fastcnn demo`: every public op on every usable backend against the reference, as a table.

Each op's demo case lives in DEMO_CASES (op name -> function returning (args, kwargs) on a device);
families add their cases with `demo_case`. For each case and backend the table shows the largest
error of the forward result and of the input gradient against the float64 reference."""
from __future__ import annotations

from typing import Callable, Dict

import torch

from . import ops
from ._registry import available_backends

DEMO_CASES: Dict[str, Callable] = {}


def demo_case(name: str):
    def deco(fn):
        DEMO_CASES[name] = fn
        return fn
    return deco


def _x(*shape):
    return torch.randn(*shape, dtype=torch.float32)


for _name in ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus"]:
    demo_case(_name)(lambda: ((_x(2, 3, 9, 7),), {}))
demo_case("prelu")(lambda: ((_x(2, 3, 9, 7), torch.rand(3)), {}))
demo_case("maxout")(lambda: ((_x(2, 6, 5, 5), 3), {}))
demo_case("max_pool2d")(lambda: ((_x(2, 3, 11, 9), 3), {"stride": 2, "padding": 1}))
demo_case("avg_pool2d")(lambda: ((_x(2, 3, 11, 9), 3), {"stride": 2, "padding": 1}))
demo_case("adaptive_avg_pool2d")(lambda: ((_x(2, 3, 11, 9), (3, 2)), {}))
demo_case("conv2d")(lambda: ((_x(2, 6, 11, 9), _x(4, 3, 3, 3), _x(4)), {"padding": 1, "groups": 2}))
demo_case("conv_transpose2d")(lambda: ((_x(2, 4, 5, 6), _x(4, 3, 3, 3)), {"stride": 2}))
demo_case("linear")(lambda: ((_x(5, 7), _x(3, 7), _x(3)), {}))
demo_case("batch_norm")(lambda: ((_x(4, 3, 5, 5), torch.zeros(3), torch.ones(3)), {"training": True}))
demo_case("softmax")(lambda: ((_x(4, 10),), {"dim": 1}))
demo_case("interpolate")(lambda: ((_x(2, 3, 5, 7),), {"scale_factor": 2, "mode": "bilinear", "align_corners": False}))
demo_case("pixel_shuffle")(lambda: ((_x(2, 8, 3, 3), 2), {}))


def _run(fn, args, kwargs, backend):
    args = [a.clone().requires_grad_() if isinstance(a, torch.Tensor) and i == 0 else a for i, a in enumerate(args)]
    out = fn(*args, **kwargs, backend=backend)
    out = out[0] if isinstance(out, tuple) else out
    grad = None
    if out.requires_grad:
        (grad,) = torch.autograd.grad(out, args[0], torch.ones_like(out))
    return out.detach(), grad


def run_demo(print_fn=print) -> int:
    info = available_backends()
    usable = [b for b in ("cpu", "triton", "cuda") if info[b]["available"]]
    print_fn("fastcnn backends:")
    for name, b in info.items():
        print_fn(f"  {name:9s} {'yes' if b['available'] else 'no ':3s}  {b['reason']}")
    print_fn("")
    header = f"{'op':22s}" + "".join(f"{b + ' fwd/grad err':>26s}" for b in usable)
    print_fn(header)
    print_fn("-" * len(header))
    failures = 0
    for name, make in DEMO_CASES.items():
        fn = getattr(ops, name, None)
        if fn is None:
            continue
        torch.manual_seed(0)
        args, kwargs = make()
        args64 = [a.double() if isinstance(a, torch.Tensor) else a for a in args]
        ref_out, ref_grad = _run(fn, args64, kwargs, "reference")
        row = f"{name:22s}"
        for backend in usable:
            try:
                out, grad = _run(fn, args, kwargs, backend)
                err = (out.double() - ref_out).abs().max().item() if out.numel() else 0.0
                gerr = (grad.double() - ref_grad).abs().max().item() if grad is not None else float("nan")
                ok = err < 1e-3 * (1 + ref_out.abs().max().item())
                failures += not ok
                row += f"{err:>12.1e} / {gerr:<9.1e}{'  ' if ok else '!!'}"
            except NotImplementedError:
                row += f"{'not implemented':>26s}"
        print_fn(row)
    return failures
