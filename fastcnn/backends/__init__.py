"""Kernel backends, one package each. A package's __init__.py declares its backend
(fastcnn._registry.declare_backend: probe, tensor devices) and the registry finds it; its modules
register kernels with the backend's decorator (BACKEND.kernel)."""
