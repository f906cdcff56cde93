"""Kernel backends. Each subpackage's modules register kernels with fastcnn._registry.register."""
