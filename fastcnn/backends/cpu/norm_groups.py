"""cpu kernels of row-group normalisation (fastcnn._C.norm_groups, csrc/host/norm_groups.cpp):
group_norm, layer_norm, instance_norm. Signatures: fastcnn/ops/norm_groups.py."""
from __future__ import annotations

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like, new_empty


def _opt(t):
    return addr(t) if t is not None else 0


@cpu_kernel(kernels.group_rows_forward)
def group_rows_forward(x, groups, span, weight, bias, eps, running_mean, running_var, momentum):
    R, L = x.shape
    y = empty_like(x)
    mean, rstd = new_empty(x, R), new_empty(x, R)
    _C.norm_groups.forward(dtype_code(x), addr(x), addr(y), R, L, int(groups), int(span), _opt(weight), _opt(bias),
                           float(eps), addr(mean), addr(rstd), _opt(running_mean), _opt(running_var),
                           float(momentum))
    return y, mean, rstd


@cpu_kernel(kernels.group_rows_backward)
def group_rows_backward(gy, x, groups, span, weight, mean, rstd, need_input, need_weight, need_bias):
    R, L = x.shape
    n_params = int(groups) * (L // int(span))
    gx = empty_like(x) if need_input else None
    gw = new_empty(x, n_params) if need_weight else None
    gb = new_empty(x, n_params) if need_bias else None
    _C.norm_groups.backward(dtype_code(x), addr(gy), addr(x), _opt(gx), R, L, int(groups), int(span), _opt(weight),
                            addr(mean), addr(rstd), _opt(gw), _opt(gb))
    return gx, gw, gb
