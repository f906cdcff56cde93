"""What a benchmark case is, the FLOP/byte conventions, and how an op becomes contenders.

A Case builds, for one mode ("forward" or "train" = forward + backward), a dict of fastcnn
contenders and a dict of baselines (callables that run the op once and return its result). The
suites (suites.py) are lists of Cases; adding a layer, an op or a network is one line there."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

Contenders = Dict[str, Callable[[], object]]


@dataclass
class Case:
    suite: str  # "ops", "layers", "networks" or "overhead"
    name: str
    family: str  # op family, for --filter
    build: Callable[[str, Sequence[str]], Tuple[Contenders, Contenders]]  # (mode, backends) -> (fastcnn, baselines)
    flops: Callable[[str], float] = lambda mode: 0.0  # nominal FLOPs of one call in that mode
    nbytes: Callable[[str], float] = lambda mode: 0.0  # bytes read + written by one call in that mode
    quick: bool = False  # part of --quick
    modes: Tuple[str, ...] = ("forward", "train")
    rtol: float = 1e-4  # re-check tolerance, relative to the result's largest value
    reference: str = "torch"
    memory: bool = False  # also measure each contender's peak memory of one call (fastcnn/bench/memory.py)
    tags: Tuple[str, ...] = field(default_factory=tuple)
    # mode -> an uncompiled torch call on state of its own, for --compile to compile; None: compile
    # baselines["torch"] itself (right for stateless calls; a training step's model keeps changing)
    compile_source: Optional[Callable[[str], Callable]] = None


# ---- conventions -----------------------------------------------------------------------------
def conv_flops(N, C, K, R, S, P, Q, groups=1) -> float:
    """Nominal forward FLOPs of a convolution: 2*N*K*(C/groups)*R*S*P*Q (a multiply-add = 2);
    training counts three such products (forward, input gradient, weight gradient)."""
    return 2.0 * N * K * (C // groups) * R * S * P * Q


def train_factor(mode: str) -> float:
    return 3.0 if mode == "train" else 1.0


def elementwise_bytes(numel: int, mode: str, itemsize: int = 4) -> float:
    """Forward reads x and writes y (2 passes); backward reads gy and the saved tensor, writes gx (3)."""
    return itemsize * numel * (2 if mode == "forward" else 5)


# ---- turning an op into contenders -------------------------------------------------------------
def _requires_grad(inputs, grad_args):
    return [a.detach().clone().requires_grad_() if i in grad_args else a for i, a in enumerate(inputs)]


def make_call(fn: Callable, inputs: Sequence, kwargs: dict, mode: str, grad_args=(0,)) -> Callable[[], object]:
    """A callable that runs fn(*inputs, **kwargs) once: the output (forward), or the gradients of
    the inputs at positions grad_args for a fixed random output gradient (train)."""
    if mode == "forward":
        def forward_call():
            with torch.no_grad():
                return fn(*inputs, **kwargs)
        return forward_call
    leaves = _requires_grad(inputs, grad_args)
    probe = fn(*leaves, **kwargs)
    probe = probe[0] if isinstance(probe, tuple) else probe
    # The same output gradient for every contender of a case, so their input gradients compare.
    grad_out = torch.randn(probe.shape, dtype=probe.dtype, generator=torch.Generator().manual_seed(0))

    def train_call():
        out = fn(*leaves, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        return torch.autograd.grad(out, [leaves[i] for i in grad_args], grad_out)
    return train_call


def to_channels_last(inputs):
    return [a.contiguous(memory_format=torch.channels_last) if isinstance(a, torch.Tensor) and a.dim() == 4 else a
            for a in inputs]


def op_contenders(fast_fn: Callable, torch_fn: Callable, inputs: Sequence, mode: str, backends: Sequence[str], *,
                  kwargs: Optional[dict] = None, fast_kwargs: Optional[dict] = None, variants: Optional[dict] = None,
                  channels_last: bool = False, compile: bool = False, extra_baselines: Optional[Contenders] = None,
                  grad_args=(0,)) -> Tuple[Contenders, Contenders]:
    """fastcnn contenders 'fastcnn[<backend>]' (or '[<backend>/<variant>]' for each variant's extra
    keywords, e.g. conv algorithms) and baselines 'torch' (eager, NCHW), 'torch_cl' (eager,
    channels_last input, with 'fastcnn[<backend>,cl]' beside it), 'torch.compile'."""
    kwargs = kwargs or {}
    fast: Contenders = {}
    for backend in backends:
        for vname, vkw in (variants or {"": {}}).items():
            label = f"fastcnn[{backend}{'/' + vname if vname else ''}]"
            fast[label] = make_call(fast_fn, inputs, {**kwargs, **(fast_kwargs or {}), **vkw, "backend": backend},
                                    mode, grad_args)
    base: Contenders = {"torch": make_call(torch_fn, inputs, kwargs, mode, grad_args)}
    if channels_last:
        cl_inputs = to_channels_last(inputs)
        base["torch_cl"] = make_call(torch_fn, cl_inputs, kwargs, mode, grad_args)
        for backend in backends:
            fast[f"fastcnn[{backend},cl]"] = make_call(fast_fn, cl_inputs, {**kwargs, **(fast_kwargs or {}),
                                                                           "backend": backend}, mode, grad_args)
    if compile:
        compiled = torch.compile(torch_fn, dynamic=False)
        base["torch.compile"] = make_call(compiled, inputs, kwargs, mode, grad_args)
    base.update(extra_baselines or {})
    return fast, base
