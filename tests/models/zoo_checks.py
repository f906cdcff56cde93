"""What every zoo network must pass, shared by tests/models/test_zoo.py:
- no torch compute: no torch.nn compute module in the tree, no torch compute kernel dispatched
  (an aten-level record of forward and backward);
- twin parity: forward and every parameter's gradient equal the torch twin's.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

# Modules that compute nothing themselves (containers, reshapes).
NON_COMPUTE = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Identity, nn.Flatten, nn.Unflatten,
               nn.ParameterList, nn.ParameterDict)

# aten kernels that a torch compute layer would run: seeing one means a layer was not fastcnn's.
# (Names as TorchDispatchMode sees them: the overload packet, e.g. "convolution", "addmm". Dropout masks
# are drawn with torch's generator by design, fastcnn/ops/dropout.py: bernoulli_ is allowed; so is the
# element-wise glue of a forward (add for skips, mul, pow, exp in a VAE's reparameterisation).)
TORCH_COMPUTE_EXACT = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "matmul", "linear",
                       "sigmoid", "tanh", "relu", "erf"}
TORCH_COMPUTE_PARTS = (
    "convolution", "conv2d", "conv_transpose", "mkldnn", "leaky_relu", "elu", "softplus", "prelu", "gelu", "silu",
    "hardswish", "threshold", "sigmoid_backward", "tanh_backward", "batch_norm", "layer_norm", "group_norm",
    "instance_norm", "local_response", "max_pool", "avg_pool", "adaptive_", "max_unpool", "upsample",
    "grid_sampler", "im2col", "col2im", "pixel_shuffle", "pixel_unshuffle", "softmax", "nll_loss", "mse_loss",
    "binary_cross_entropy", "native_dropout", "reflection_pad", "replication_pad",
)


def torch_compute_modules(model: nn.Module):
    """Names of modules in `model` whose class is neither fastcnn's nor a torch container/reshape."""
    return [f"{name or '<root>'}: {type(m).__module__}.{type(m).__name__}" for name, m in model.named_modules()
            if not type(m).__module__.startswith("fastcnn.") and type(m) not in NON_COMPUTE]


class AtenRecorder(TorchDispatchMode):
    """Records the aten kernels dispatched while active."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def torch_compute_kernels(fn) -> set:
    """torch compute kernels (aten) dispatched while fn() runs (forward and backward)."""
    rec = AtenRecorder()
    with rec:
        fn()
    return {op for op in rec.ops if op in TORCH_COMPUTE_EXACT or any(part in op for part in TORCH_COMPUTE_PARTS)}
