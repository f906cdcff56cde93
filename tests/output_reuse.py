"""A check shared by the tests of fastcnn's two output caches (the cpu backend's Python cache and the
eager ops' C++ pool): an output something still refers to is never handed to a later output."""
from typing import Callable, Optional

import numpy as np
import torch

HOLDERS = ["tensor", "view", "numpy", "autograd"]


def assert_referenced_output_kept(holder: str, numel: int, tanh: Callable, relu: Callable,
                                  after_drop: Optional[Callable[[], None]] = None) -> None:
    """tanh(x)'s output, still held by `holder` (one of HOLDERS) after its tensor is dropped, is not
    the buffer of a later relu output of the same size, and still holds its values; after_drop runs
    its own checks right after the drop."""
    x = torch.randn(numel, requires_grad=holder == "autograd")
    y = tanh(x)
    kept = {"tensor": lambda: y, "view": lambda: y[10:20], "numpy": lambda: y.detach().numpy(),
            "autograd": lambda: y.sum()}[holder]()  # tanh saves its output for backward
    expected = torch.tanh(x.detach())
    ptr = y.data_ptr()
    if holder != "tensor":
        del y
    if after_drop is not None:
        after_drop()
    other = relu(torch.randn(numel))
    assert other.data_ptr() != ptr
    if holder == "view":
        torch.testing.assert_close(kept, expected[10:20])
    elif holder == "numpy":
        np.testing.assert_allclose(kept, expected.numpy(), rtol=1e-6)
    elif holder == "autograd":
        kept.backward()
        torch.testing.assert_close(x.grad, 1 - expected ** 2)
