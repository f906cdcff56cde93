"""The lecture's networks, built only from fastcnn layers (../docs/models.md).

    from fastcnn import models
    models.list_models()                              # the 22 names
    net = models.get_model("lenet", size="small")     # fastcnn kernels forward and backward
    twin = models.get_twin("lenet", size="small")     # the same network from torch.nn (same state_dict keys)
    x = net.example_input(8)                          # a batch of net.input_shape

Each network lives in the module named after it and registers itself with @register_model.
"""
from ._layers import FAST, TORCH, LayerLib
from ._network import Network
from ._registry import ModelSpec, get_model, get_twin, list_models, model_spec, register_model

__all__ = ["get_model", "get_twin", "list_models", "model_spec", "register_model", "ModelSpec", "Network",
           "LayerLib", "FAST", "TORCH"]
