"""fastcnn.train.optim: the recipes' Adam / SGD take torch's fused step where every parameter allows it,
and that step follows the same update as torch's default loop (to rounding)."""
import pytest
import torch

from fastcnn.train import optim
from fastcnn.train.task import Settings


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(7, generator=g, requires_grad=True)]


@pytest.mark.parametrize("make,kwargs", [
    (optim.adam, dict(lr=1e-2, weight_decay=1e-3)),
    (optim.adam, dict(lr=1e-2, betas=(0.5, 0.999))),
    (optim.sgd, dict(lr=1e-2, momentum=0.9, weight_decay=5e-4)),
    (optim.sgd, dict(lr=1e-2)),
])
def test_fused_step_matches_the_default_loop(make, kwargs):
    fused_params, loop_params = _params(), _params()
    fused = make(fused_params, **kwargs)
    loop = type(fused)(loop_params, foreach=False, **kwargs)
    assert fused.defaults["fused"] is True
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in fused_params]
        for ps, opt in ((fused_params, fused), (loop_params, loop)):
            for p, gr in zip(ps, grads):
                p.grad = gr.clone()
            opt.step()
    for a, b, start in zip(fused_params, loop_params, _params()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)  # float32 rounding of one formula
        assert not torch.equal(a, start)  # the steps moved them


def test_explicit_choice_and_unfusable_parameters_are_respected():
    assert not optim.adam(_params(), lr=1e-3, foreach=False).defaults.get("fused")
    assert not optim.sgd(_params(), lr=1e-3, fused=False).defaults.get("fused")
    meta = [torch.empty(3, device="meta", requires_grad=True)]
    assert not optim.adam(meta, lr=1e-3).defaults.get("fused")
    groups = [{"params": _params()}, {"params": _params(1), "lr": 1e-4}]
    assert optim.adam(groups, lr=1e-3).defaults["fused"] is True


@pytest.mark.parametrize("name", ["lenet", "dcgan"])
def test_recipes_train_with_the_fused_step(name):
    from fastcnn.train.recipes import RECIPES

    task = RECIPES[name](Settings(steps=2))
    assert task.optimizers and all(opt.defaults["fused"] is True for opt in task.optimizers.values())
