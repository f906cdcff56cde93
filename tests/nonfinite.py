"""assert_close for results that hold NaN: helpers.assert_close compares the non-finite values with
torch.equal, for which NaN != NaN, so any NaN fails it. Here the NaN positions must match exactly
and everything else goes through assert_close (infinities compared exactly there)."""
import torch

from helpers import assert_close


def assert_close_nan(actual: torch.Tensor, expected: torch.Tensor, **kwargs) -> None:
    name = kwargs.get("name", "output")
    a_nan, e_nan = torch.isnan(actual.detach().cpu()), torch.isnan(expected.detach().cpu())
    assert torch.equal(a_nan, e_nan), f"{name}: NaN at different places ({int(a_nan.sum())} vs {int(e_nan.sum())})"
    assert_close(actual.detach().cpu().masked_fill(a_nan, 0), expected.detach().cpu().masked_fill(e_nan, 0), **kwargs)
