"""Argument checks shared by every public op. Each raises TypeError/ValueError with a message that
names the argument, says what was expected and what came."""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def float_tensor(x, name: str, ndims: Union[int, Sequence[int], None] = None) -> torch.Tensor:
    """A float32/float64 tensor with one of the allowed ranks."""
    tensor(x, name)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if ndims is not None:
        allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
        if x.dim() not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} tensor, got {x.dim()}-D with shape {tuple(x.shape)}")
    return x


def same_dtype_device(ref: torch.Tensor, ref_name: str, other: torch.Tensor, name: str) -> None:
    if other.dtype != ref.dtype:
        raise TypeError(f"{name}: expected dtype {ref.dtype} like {ref_name}, got {other.dtype}")
    if other.device != ref.device:
        raise ValueError(f"{name}: expected device {ref.device} like {ref_name}, got {other.device}")


def pair(value, name: str, *, minimum: int = None) -> Tuple[int, int]:
    """An int or a pair of ints, as torch's _pair, with an optional lower bound."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        out = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        out = (int(value[0]), int(value[1]))
    elif isinstance(value, (tuple, list)) and len(value) == 1 and isinstance(value[0], int):
        out = (int(value[0]),) * 2
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if minimum is not None and min(out) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    return out


def number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)
