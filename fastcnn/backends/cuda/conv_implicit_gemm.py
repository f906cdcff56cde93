"""cuda convolution on the tensor cores: algo 'implicit_gemm' (conv_implicit_gemm.cu, engine mma_tile.cuh),
forward, backward input and backward weight, with the convolution kernel signatures of fastcnn/contracts/conv.py.

float32 runs on mma.sync TF32 (sm_80 or newer): plain TF32 when torch.backends.cudnn.allow_tf32 is on
(torch's rule for its cuDNN convolutions, on by default), 3xTF32 (about float32 accuracy, three
products) when it is off. float64 has no TF32 path: it runs the FMA implicit-GEMM kernels of
algo 'direct' (conv_direct.cu), the same GEMMs in double precision.
"""
from __future__ import annotations

import torch

from ...contracts.activation import fused_code
from ...contracts import kernels
from ...contracts.conv import ConvShape
from . import _lib
from ._conv_common import (_backward_input_setup, _backward_weight_setup, _check_grid_groups, _forward_setup,
                           launch_weight_grad_split_k)
from ._lib import cuda_kernel, i64
from .conv_direct import _direct_backward_input, _direct_backward_weight, _direct_forward
from .gemm import addr, cdiv, null

FAMILY = "conv_implicit_gemm"
BLOCK_M = BLOCK_N = 128  # mma_tile.cuh BM, BN
THREADS = 256
MIN_CAPABILITY = (8, 0)  # mma.sync .tf32 and cp.async


def precision() -> str:
    """Kernel variant for float32: 'tf32' when torch.backends.cudnn.allow_tf32, else 'tf32x3'."""
    return "tf32" if torch.backends.cudnn.allow_tf32 else "tf32x3"


def _check_device(t: torch.Tensor) -> None:
    if t.is_cuda and torch.cuda.get_device_capability(t.device) < MIN_CAPABILITY:
        raise NotImplementedError(f"algo='implicit_gemm' on the cuda backend needs tensor cores with TF32 (compute "
                                  f"capability 8.0+), this GPU is {torch.cuda.get_device_capability(t.device)}; "
                                  "use algo='direct'")


def _runs_here(t: torch.Tensor, shape: ConvShape) -> bool:
    """False for float64 (the caller runs algo 'direct' instead); for float32 checks the GPU and the grid."""
    if t.dtype != torch.float32:
        return False
    _check_device(t)
    _check_grid_groups(shape.G)
    return True


def _kernel(direction: str) -> str:
    return f"conv_implicit_gemm_{direction}_{precision()}_f32"


@cuda_kernel(kernels.conv2d_forward.implicit_gemm)
def forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    if not _runs_here(x, shape):
        return _direct_forward(x, w, bias, shape, activation, act_param)
    kind = fused_code(activation)
    s, y = _forward_setup(x, shape)
    if y.numel() == 0:
        return y
    grid = (cdiv(s.N * s.PQ, BLOCK_N), cdiv(s.Kg, BLOCK_M), s.G)
    _lib.launch(FAMILY, _kernel("forward"), grid, (THREADS,),
                (addr(x), addr(w), addr(bias) if bias is not None else null(), addr(y), *s.args(), i64(kind),
                 _lib.scalar(act_param, x.dtype)))
    return y


@cuda_kernel(kernels.conv2d_backward_input.implicit_gemm)
def backward_input(gy, w, shape: ConvShape):
    if not _runs_here(gy, shape):
        return _direct_backward_input(gy, w, shape)
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    grid = (cdiv(s.N * s.H * s.W, BLOCK_N), cdiv(s.Cg, BLOCK_M), s.G)
    _lib.launch(FAMILY, _kernel("backward_input"), grid, (THREADS,), (addr(gy), addr(w), addr(gx), *s.args()))
    return gx


@cuda_kernel(kernels.conv2d_backward_weight.implicit_gemm)
def backward_weight(x, gy, shape: ConvShape):
    if not _runs_here(x, shape):
        return _direct_backward_weight(x, gy, shape)
    s, gw = _backward_weight_setup(x, shape)
    if gw.numel() == 0:
        return gw
    return launch_weight_grad_split_k(FAMILY, _kernel("backward_weight"), x, gy, gw, s, BLOCK_M, BLOCK_N, THREADS)
