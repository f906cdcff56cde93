"""Runs PyTorch's own OpInfo sample inputs (torch.testing._internal.common_methods_invocations.op_db)
through fastcnn's public ops and sorts each (op, dtype, sample, backend) into one of:

    match     forward (and, where something requires grad, backward) equal to torch: shape, values
              within the project's scaled tolerance against a float64 reference, NaN/inf at the same
              places with the same values, the same memory format (NCHW vs channels_last)
    rejected  a ValueError/TypeError/NotImplementedError whose message names one of the op's
              arguments (a documented, clear rejection)
    crash     anything else: another exception, a rejection that names no argument, or a result
              that differs from torch

Nobody on this project wrote these inputs; they are what torch's own test-suite feeds its ops.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

import fastcnn.ops as fops
from helpers import EPS

# op_db name -> fastcnn.ops name (Tensor.unfold is not F.unfold; the masked.* variants take masks
# fastcnn does not have).
def fastcnn_name(opinfo_name: str) -> Optional[str]:
    if opinfo_name == "unfold" or opinfo_name.startswith("masked."):
        return None
    name = opinfo_name.removeprefix("nn.functional.")
    return name if name in fops.__all__ else None


def load_ops():
    """The OpInfos of the ops fastcnn mirrors, sorted by (name, variant)."""
    from torch.testing._internal.common_methods_invocations import op_db

    ops = [op for op in op_db if fastcnn_name(op.name) is not None]
    return sorted(ops, key=lambda op: (op.name, op.variant_test_name))


def op_id(op) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


# ---- Tolerance ----------------------------------------------------------------------------------
# Products summed into one forward result, per op (the reduction length of tests/helpers.py's
# assert_close); ops not listed compute each result from O(1) inputs.
def _forward_reduction(name: str, x, args, kwargs) -> int:
    def arg(i, key, default=None):
        return args[i] if len(args) > i else kwargs.get(key, default)

    if name in ("conv2d", "conv_transpose2d"):
        w = arg(0, "weight")
        return int(w[0].numel()) * (w.shape[0] if name == "conv_transpose2d" else 1)
    if name in ("linear", "matmul"):
        return int(x.shape[-1]) if x.dim() else 1
    if name in ("batch_norm",):
        return max(1, x.numel() // max(1, x.shape[1] if x.dim() > 1 else 1))
    if name in ("cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy",
                "binary_cross_entropy_with_logits", "softmax", "log_softmax", "normalize",
                "local_response_norm", "adaptive_avg_pool2d", "avg_pool2d", "interpolate", "grid_sample"):
        return max(1, x.numel())
    return 1


def rms(ts) -> float:
    vals = [t.detach().double() for t in ts if isinstance(t, torch.Tensor) and t.is_floating_point()]
    vals = [v[torch.isfinite(v)] for v in vals]
    return max([v.pow(2).mean().sqrt().item() for v in vals if v.numel()] + [0.0])


def compare(actual: torch.Tensor, expected: torch.Tensor, same_dtype_torch: torch.Tensor,
           reduction: int, what: str, conditioning: float = 0.0) -> Optional[str]:
    """None if actual matches, else why not. Non-finite values must sit where torch's (in the same
    dtype) sit and be equal; finite ones are within assert_close's bound against the float64
    reference (its `scale` being the larger of rms(expected) and `conditioning`, the size of what
    went in: a log-softmax or a normalisation is accurate relative to its input, a gradient relative
    to the incoming gradient), or no further from it than torch's own result in that dtype (x8)."""
    if actual.shape != same_dtype_torch.shape:
        return f"{what}: shape {tuple(actual.shape)} != torch's {tuple(same_dtype_torch.shape)}"
    if actual.dtype != same_dtype_torch.dtype:
        return f"{what}: dtype {actual.dtype} != torch's {same_dtype_torch.dtype}"
    if actual.dim() == 4 and actual.numel() > 0:
        for fmt in (torch.contiguous_format, torch.channels_last):
            t_is = same_dtype_torch.is_contiguous(memory_format=fmt)
            if t_is and not actual.is_contiguous(memory_format=fmt) and not same_dtype_torch.is_contiguous(
                    memory_format=torch.channels_last if fmt is torch.contiguous_format else torch.contiguous_format):
                return f"{what}: torch returns {fmt}, fastcnn strides {actual.stride()}"
    if not actual.is_floating_point():
        return None if torch.equal(actual, same_dtype_torch) else f"{what}: integer result differs from torch's"
    a = actual.detach().double()
    t = same_dtype_torch.detach().double()
    e = expected.detach().double()
    fin_a, fin_t = torch.isfinite(a), torch.isfinite(t)
    if not torch.equal(fin_a, fin_t):
        return f"{what}: {int((fin_a != fin_t).sum())} non-finite values at places other than torch's"
    if not torch.equal(a[~fin_t].nan_to_num(0.5), t[~fin_t].nan_to_num(0.5)):
        return f"{what}: non-finite values differ from torch's (e.g. NaN instead of inf)"
    keep = fin_t & torch.isfinite(e)
    a, t, e = a[keep], t[keep], e[keep]
    if e.numel() == 0:
        return None
    scale = max(e.pow(2).mean().sqrt().item(), conditioning) + 1e-30
    tol = 8.0 * EPS[actual.dtype] * math.sqrt(reduction + 1) * (e.abs() + scale)
    tol = tol + 8.0 * (t - e).abs().max()
    err = (a - e).abs()
    if bool((err > tol).any()):
        i = int(torch.argmax(err - tol))
        return f"{what}: {int((err > tol).sum())} of {e.numel()} off; worst got {a[i].item():.9g} expected {e[i].item():.9g}"
    return None


# ---- Running one sample -------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str  # 'match' | 'rejected' | 'crash' | 'skip'
    detail: str = ""


_REJECTIONS = (ValueError, TypeError, NotImplementedError)


def _map(obj, fn):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    return obj


def _tensors(obj) -> List[torch.Tensor]:
    out = []
    _map(obj, lambda t: out.append(t) or t)
    return out


def _fresh(obj, dtype=None):
    """Leaf copies (same requires_grad), optionally cast to dtype when floating."""
    def f(t):
        c = t.detach().clone(memory_format=torch.preserve_format)
        if dtype is not None and c.is_floating_point():
            c = c.to(dtype)
        return c.requires_grad_(t.requires_grad)
    return _map(obj, f)


def _outputs(result) -> List[torch.Tensor]:
    return [r for r in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(r, torch.Tensor)]


def _call(fn, sample, dtype=None):
    inp, args, kwargs = _fresh((sample.input, tuple(sample.args), dict(sample.kwargs)), dtype)
    return fn(inp, *args, **kwargs), [t for t in _tensors((inp, args, kwargs)) if t.requires_grad]


def _grads(outs, leaves, seed):
    """Gradients of the float outputs with a seeded random incoming gradient, and that gradient's rms."""
    float_outs = [o for o in outs if o.is_floating_point() and o.requires_grad]
    if not float_outs or not leaves:
        return None, 0.0
    g = torch.Generator().manual_seed(seed)
    gys = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in float_outs]
    return torch.autograd.grad(float_outs, leaves, gys, allow_unused=True), rms(gys)


def _names_an_argument(message: str, fn: Callable) -> bool:
    params = [p for p in inspect.signature(fn).parameters if p != "backend"]
    return any(re.search(rf"\b{re.escape(p)}\b", message) for p in params)


def _dropout_check(fast: torch.Tensor, x: torch.Tensor, p: float, training: bool) -> Optional[str]:
    """Dropout is random: each output is 0 or x / (1 - p) (x itself when not training or p == 0)."""
    if fast.shape != x.shape:
        return f"dropout: shape {tuple(fast.shape)} != {tuple(x.shape)}"
    if not training or p == 0:
        return None if torch.equal(fast, x) else "dropout: not the identity"
    if p == 1:
        return None if bool((fast == 0).all()) else "dropout p=1: not all zero"
    kept = fast != 0
    want = x[kept] / (1 - p)
    ok = torch.allclose(fast[kept], want, rtol=4 * EPS[x.dtype], atol=0, equal_nan=True)
    return None if ok else "dropout: kept values are not x / (1 - p)"


def run_sample(op, sample, dtype, backend: str, seed: int = 0) -> Outcome:
    name = fastcnn_name(op.name)
    fast_fn = getattr(fops, name)
    torch_fn = op.op
    try:
        t_res, t_leaves = _call(torch_fn, sample)
        t_outs = _outputs(t_res)
        t_grads, _ = _grads(t_outs, t_leaves, seed)
    except Exception as e:  # torch itself refuses: nothing to compare
        return Outcome("skip", f"torch raises {type(e).__name__}")
    try:
        f_res, f_leaves = _call(lambda *a, **k: fast_fn(*a, backend=backend, **k), sample)
        f_outs = _outputs(f_res)
        f_grads, _ = _grads(f_outs, f_leaves, seed)
    except _REJECTIONS as e:
        msg = str(e)
        if _names_an_argument(msg, fast_fn) or isinstance(e, NotImplementedError):
            return Outcome("rejected", f"{type(e).__name__}: {msg}")
        return Outcome("crash", f"{type(e).__name__} naming no argument: {msg}")
    except Exception as e:
        return Outcome("crash", f"{type(e).__name__}: {e}")

    if len(f_outs) != len(t_outs):
        return Outcome("crash", f"{len(f_outs)} outputs, torch gives {len(t_outs)}")
    if name in ("dropout", "dropout2d"):
        p = sample.kwargs.get("p", sample.args[0] if sample.args else 0.5)
        training = sample.kwargs.get("training", True)
        if name == "dropout2d" or (training and 0 < p < 1):  # random: structure only
            why = _dropout_check(f_outs[0], sample.input.detach(), p, training) if name == "dropout" else (
                None if f_outs[0].shape == t_outs[0].shape else "dropout2d: shape differs")
            return Outcome("crash", why) if why else Outcome("match")

    # the float64 reference: torch on float64 copies (the same call as t_res when dtype is float64)
    r_res, r_leaves = _call(torch_fn, sample, torch.float64)
    r_outs = _outputs(r_res)
    r_grads, gy_rms = _grads(r_outs, r_leaves, seed)
    red = _forward_reduction(name, sample.input, tuple(sample.args), dict(sample.kwargs))
    for i, (f, t, r) in enumerate(zip(f_outs, t_outs, r_outs)):
        why = compare(f, r, t, red, f"output {i}", rms([sample.input]))
        if why:
            return Outcome("crash", why)
    if (t_grads is None) != (f_grads is None):
        return Outcome("crash", "gradient present on one side only")
    if t_grads is not None:
        back_red = max([o.numel() for o in t_outs] + [red])
        for i, (f, t, r) in enumerate(zip(f_grads, t_grads, r_grads)):
            if t is None and f is None:
                continue
            if t is None or f is None:
                if (t if f is None else f).abs().sum() == 0:
                    continue  # an all-zero gradient vs none: both mean 'no dependence'
                return Outcome("crash", f"grad {i}: None on one side only")
            why = compare(f, r, t, back_red, f"grad {i}", gy_rms)
            if why:
                return Outcome("crash", why)
    return Outcome("match")


def run_corpus(ops, dtypes, backend: str, sample_filter=None) -> Dict[str, List[Tuple[str, Outcome]]]:
    """{op id: [(sample description, outcome), ...]} over every sample of every op and dtype."""
    out: Dict[str, List[Tuple[str, Outcome]]] = {}
    for op in ops:
        rows = out.setdefault(op_id(op), [])
        for dtype in dtypes:
            for k, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=True)):
                if sample_filter is not None and not sample_filter(op, sample):
                    continue
                desc = f"{str(dtype).removeprefix('torch.')} #{k} {describe(sample)}"
                rows.append((desc, run_sample(op, sample, dtype, backend, seed=k)))
    return out


def describe(sample) -> str:
    def d(v):
        return f"T{list(v.shape)}" if isinstance(v, torch.Tensor) else repr(v)
    parts = [d(sample.input)] + [d(a) for a in sample.args] + [f"{k}={d(v)}" for k, v in sample.kwargs.items()]
    return "(" + ", ".join(parts) + ")"
