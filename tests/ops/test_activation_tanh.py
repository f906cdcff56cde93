"""The float32 cpu tanh (one odd rational x P(x^2) / Q(x^2), csrc/common/activation_math.h) against
float64 torch.tanh over a dense sweep of float32 inputs, in units of the float32 result's ulp.

Bound: the rational with float32 coefficients is within 0.9 ulp of tanh (scripts/fit_tanh_rational.py);
evaluating it rounds x^2, nine multiply-adds, a product and a divide, each by at most 2^-24
relative, which is up to 1 ulp of a result just below 1 (there an ulp is 2^-24, not 2^-23). The
errors partly cancel; measured worst cases are 4.5 ulp with fused multiply-adds (avx2, avx512) and
5.5 to 6.2 without (the generic copy rounds each product too), so the bounds below are 5 and 7 ulp."""
import numpy as np
import pytest
import torch

from helpers import isa  # noqa: F401

MAX_ULP = {"generic": 7.0, "avx2": 5.0, "avx512": 5.0}


def cpu_tanh(x):
    from fastcnn.contracts import kernels

    return kernels.activation_forward["cpu"](x, "tanh")


def sweep():
    """Every 61st float32 in [0, 10) (all binades from the subnormals up, the clamp at 9 and the
    point where float32 tanh reaches 1, 9.01), the neighbours of 9 and 9.01, and their negatives."""
    bits = np.arange(0, 0x41200000, 61, dtype=np.uint32)
    edges = np.array([9.0, 9.01, 3e-4, 0.625], dtype=np.float32)
    near = [np.nextafter(edges, np.float32(k * np.inf)) for k in (1, -1)]
    pos = np.concatenate([bits.view(np.float32), edges, *near])
    return torch.from_numpy(np.concatenate([pos, -pos]))


def ulp_error(y, x):
    ref = torch.tanh(x.double())
    ulp = torch.from_numpy(np.spacing(ref.float().abs().numpy())).double()
    return (y.double() - ref).abs() / ulp


def test_tanh_float32_max_ulp_over_dense_sweep(isa):  # noqa: F811
    x = sweep()
    err = ulp_error(cpu_tanh(x), x)
    worst = int(err.argmax())
    assert err[worst] <= MAX_ULP[isa], f"{err[worst]:.2f} ulp at x = {x[worst].item():.9g}"


def test_tanh_float32_exact_where_float32_tanh_is_exact(isa):  # noqa: F811
    # Odd to the bit; tanh(x) = x below 3e-4 (x^3 / 3 is under half an ulp of x, and Q(x^2) rounds
    # to 1 below 3.5e-4, so the divide is exact); +-1 at and beyond
    # the clamp, so |tanh| never passes 1; inf saturates, NaN stays NaN, -0 stays -0.
    x = sweep()
    y = cpu_tanh(x)
    n = x.numel() // 2
    assert torch.equal(y[n:], -y[:n])
    assert y.abs().max().item() <= 1.0
    small = x.abs() < 3e-4
    assert torch.equal(y[small], x[small])
    special = torch.tensor([9.0, 9.5, 20.0, 1e30, float("inf"), -9.0, -1e30, float("-inf"), float("nan"), -0.0])
    ys = cpu_tanh(special)
    assert ys[:5].eq(1.0).all() and ys[5:8].eq(-1.0).all()
    assert torch.isnan(ys[8])
    assert ys[9].item() == 0.0 and torch.signbit(ys[9])


@pytest.mark.parametrize("n", [1, 7, 8, 9, 4099])
def test_tanh_float64_uses_exact_path(isa, n):  # noqa: F811
    # double (the gradcheck dtype) keeps the C library's tanh: within an ulp or two of torch's.
    x = torch.randn(n, dtype=torch.float64) * 4
    torch.testing.assert_close(cpu_tanh(x), torch.tanh(x), rtol=4e-16, atol=1e-300)
