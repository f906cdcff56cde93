"""Triton kernels, one module per op family. Each module registers its launchers with
`@triton_kernel(kernels.<slot>)`; see fastcnn/backends/triton/_lib.py for how they are registered for GPU and
interpreter use."""
