"""The vector math of csrc/common/simd.h (exp, log, log1p, pow_nonneg) in each ISA copy against
float64 torch over the float range, edge values included (through fastcnn._C.vmath)."""
import math

import pytest
import torch

from fastcnn import _C
from helpers import isa  # noqa: F401  (runs each test under every ISA copy this CPU has)

KIND = {"exp": 0, "log": 1, "log1p": 2, "pow": 3}
DTYPE = {torch.float32: _C.Dtype.float32, torch.float64: _C.Dtype.float64}


def apply(kind, x, e=0.0):
    out = torch.empty_like(x)
    _C.vmath.apply(KIND[kind], x.data_ptr(), out.data_ptr(), x.numel(), float(e), DTYPE[x.dtype])
    return out


def positive_floats(n=200_003):
    """Log-spaced over every positive float exponent, subnormals included, plus the extremes."""
    x = torch.logspace(-45, 38.5, n, dtype=torch.float64).float()
    extremes = torch.tensor([1.4e-45, 1.17549435e-38, 1.1754942e-38, 3.4028235e38, 1.0, 0.5, 0.70710677, 2.0])
    return torch.cat([x, extremes])


def ulp_error(got, want64):
    """Error in units of the float spacing at the exact value (finite values)."""
    spacing = torch.from_numpy(__import__("numpy").spacing(want64.abs().float().numpy())).double()
    return ((got.double() - want64).abs() / spacing).max().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_is_accurate_over_every_exponent(isa, dtype):
    x = positive_floats().to(dtype)
    got, want = apply("log", x), torch.log(x.double())
    if dtype == torch.float32:
        assert ulp_error(got, want) <= 2.0
    else:
        torch.testing.assert_close(got, want, rtol=1e-15, atol=0)


def test_log_edge_values(isa):
    x = torch.tensor([0.0, -0.0, -1.0, -1e-30, math.inf, -math.inf, math.nan, 1.0])
    got = apply("log", x)
    torch.testing.assert_close(got, torch.log(x), equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log1p_keeps_small_arguments(isa, dtype):
    x = torch.cat([positive_floats()[::7], -torch.logspace(-30, -0.01, 1001, dtype=torch.float64).float()]).to(dtype)
    got, want = apply("log1p", x), torch.log1p(x.double())
    if dtype == torch.float32:
        assert ulp_error(got, want) <= 3.0
    else:
        torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    edges = torch.tensor([0.0, -1.0, math.inf, -2.0], dtype=dtype)
    torch.testing.assert_close(apply("log1p", edges), torch.log1p(edges), equal_nan=True, rtol=0, atol=0)


def test_exp_matches_over_its_range(isa):
    x = torch.linspace(-87.0, 88.0, 100_001)
    assert ulp_error(apply("exp", x), torch.exp(x.double())) <= 3.0


@pytest.mark.parametrize("e", [-1.75, -0.75, 0.5, 1.0 / 3.0, 2.5])
def test_pow_nonneg(isa, e):
    x = torch.logspace(-15, 15, 20_001, dtype=torch.float64).float()
    got, want = apply("pow", x, e), x.double() ** e
    # exp(e log x) in float: t = e log x carries about 1.5 ulp of rounding (log, then the product),
    # which exp turns into a relative error of 1.5 * 2^-23 |t|; exp itself adds up to 2 ulp.
    t = (e * torch.log(x.double())).abs()
    bound = (2 * t + 4) * 2.0 ** -23
    assert bool((((got.double() - want).abs() / want) <= bound).all())
    zero = torch.zeros(3)
    torch.testing.assert_close(apply("pow", zero, e), zero.double().pow(e).float(), rtol=0, atol=0)
    assert torch.equal(apply("pow", zero, 0.0), torch.ones(3))
