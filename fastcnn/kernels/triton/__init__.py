"""Triton kernels, one module per op family. Each module defines KERNELS = {name: launcher}; see
fastcnn/backends/triton/kernels.py for how they are registered for GPU and interpreter use."""
