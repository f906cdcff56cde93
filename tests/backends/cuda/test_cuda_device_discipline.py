"""Device mistakes that only a GPU used to show, caught on a CPU-only machine: a mask drawn with a
generator of another device, an op output allocated on the wrong device."""
from __future__ import annotations

import torch

from fastcnn.ops.dropout import _keep_mask


def test_dropout_mask_is_drawn_on_the_generators_device(monkeypatch):
    """A CPU generator cannot fill a CUDA tensor ('Expected a cuda device type for generator'): the
    mask is drawn where the generator lives, then moved to the input's device (meta stands in for cuda)."""
    draws = []
    original = torch.Tensor.bernoulli_

    def spy(self, p, *, generator=None):
        draws.append((self.device.type, None if generator is None else generator.device.type))
        return original(self, p, generator=generator)

    monkeypatch.setattr(torch.Tensor, "bernoulli_", spy)
    g = torch.Generator().manual_seed(3)
    keep = _keep_mask((4, 5), 0.5, g, torch.device("meta"))
    assert keep.device.type == "meta" and keep.shape == (4, 5) and keep.dtype == torch.uint8
    assert draws == [("cpu", "cpu")]
    # the same seed gives the same mask whatever the input's device
    assert torch.equal(_keep_mask((4, 5), 0.5, torch.Generator().manual_seed(3), torch.device("cpu")),
                       torch.empty(4, 5, dtype=torch.uint8).bernoulli_(0.5, generator=torch.Generator().manual_seed(3)))
    draws.clear()
    _keep_mask((3,), 0.5, None, torch.device("meta"))  # the default generator draws on the input's device
    assert draws == [("meta", None)]


def test_ops_layer_rejects_an_output_on_another_device():
    """A launcher that allocates with torch.empty(shape) (default device) instead of on the input's
    device: on a GPU the output lands on the CPU; meta stands in for the wrong device here."""
    import pytest

    from fastcnn.ops._op import apply

    class WrongDevice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.empty(x.shape, device="meta")

        @staticmethod
        def backward(ctx, gy):
            return gy

    x = torch.randn(3, requires_grad=True)
    for inp in (x, x.detach()):  # through autograd and the plain-call path
        with pytest.raises(RuntimeError, match="WrongDevice returned an output on meta for an input on cpu"):
            apply(WrongDevice, inp)


def test_fastcnn_imports_in_the_tests_resolve():
    """Every `from fastcnn... import name` in the tests, those inside GPU-only test bodies included,
    names something that exists: tests/backends/cuda/test_cuda_conv.py imported a removed `backends` from
    fastcnn._registry and, skipped everywhere without a GPU, failed all 73 of its GPU tests."""
    import ast
    import importlib
    from pathlib import Path

    missing = []
    for path in sorted(Path(__file__).resolve().parents[2].rglob("*.py")):  # every test file
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("fastcnn"):
                try:
                    module = importlib.import_module(node.module)
                except ModuleNotFoundError as e:
                    if (e.name or "").startswith("fastcnn"):
                        missing.append(f"{path.name}:{node.lineno}: {node.module}")
                    continue  # an optional dependency (cupy) of a GPU-only module
                for alias in node.names:
                    if alias.name != "*" and not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ModuleNotFoundError:
                            missing.append(f"{path.name}:{node.lineno}: {node.module}.{alias.name}")
    assert not missing, "imports of names fastcnn does not have: " + ", ".join(missing)
