"""The kernel table (fastcnn/contracts/kernels.py) and the one registration idiom.

Every backend registers its kernels with a slot object of the table, never a string, and every
registered kernel is one of the declared slots; a slot hands out exactly what was registered."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

from fastcnn import _registry
from fastcnn.contracts import kernels


def _register_everything():
    """Load cpu and triton, and import the cuda modules (registration needs no GPU)."""
    for name in ("cpu", "triton"):
        backend = _registry._BACKENDS[name]
        if backend.ready()[0]:
            _registry._load(backend)
    import fastcnn.backends.cuda as cuda

    for mod in pkgutil.iter_modules(cuda.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{cuda.__name__}.{mod.name}")


def test_every_registered_kernel_is_a_declared_slot():
    _register_everything()
    declared = kernels.declared()
    registered = _registry.registered()
    assert len(registered) > 60
    strays = [name for name, slot in registered.items() if declared.get(name) is not slot]
    assert strays == [], f"registered under a slot that fastcnn/contracts/kernels.py does not declare: {strays}"
    unused = sorted(set(declared) - set(registered))
    assert unused == [], f"declared slots no backend registers: {unused}"
    for (backend, name), slot in _registry._REGISTERED.items():
        assert backend in slot.impls, (backend, name)


@pytest.mark.parametrize("backend", ["cpu", "cuda", "triton"])
def test_registering_under_a_string_is_a_type_error(backend):
    decorators = {"cpu": ("fastcnn.backends.cpu._lib", "cpu_kernel"),
                  "cuda": ("fastcnn.backends.cuda._lib", "cuda_kernel"),
                  "triton": ("fastcnn.backends.triton._lib", "triton_kernel")}
    module, attr = decorators[backend]
    if backend == "triton":
        pytest.importorskip("triton")
    decorator = getattr(importlib.import_module(module), attr)
    before = dict(_registry._REGISTERED)
    with pytest.raises(TypeError, match=r"expected a KernelSlot of fastcnn/contracts/kernels.py.*got str 'gemm'"):
        decorator("gemm")(lambda a, b: a @ b)
    assert _registry._REGISTERED == before


def test_slot_hands_out_the_registered_kernel_and_names_alternatives():
    _registry._load(_registry._BACKENDS["cpu"])
    assert kernels.gemm["cpu"] is kernels.gemm.impls["cpu"]
    assert kernels.gemm.offered_by("cpu")
    slot = kernels.conv2d_forward.implicit_gemm
    assert not slot.offered_by("cpu")
    with pytest.raises(NotImplementedError, match=r"'conv2d_forward.implicit_gemm' has no kernel on backend 'cpu'"):
        slot["cpu"]


def test_conv_passes_have_a_slot_per_algorithm():
    for name, conv_pass in kernels.CONV_PASSES.items():
        assert [s.name for s in conv_pass.slots()] == [f"{name}.{a}" for a in kernels.CONV_ALGOS]
        assert conv_pass.algo("fft") is conv_pass.fft and conv_pass.algo("direct") is conv_pass.direct
        with pytest.raises(ValueError, match="algo: expected one of"):
            conv_pass.algo("gemm")
