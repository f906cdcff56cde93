"""Contracts between the layers: the records and codes an op family hands down to its kernels.

`fastcnn.ops` builds them (once per call, in the op's argument check) and every backend and kernel
module receives them; this package imports nothing else from fastcnn but the registry's KernelSlot
type, so both sides can depend on it without depending on each other (docs/ARCHITECTURE.md).
    kernels.py     the kernel table: one KernelSlot per kernel (name + signature); ops call
                   `kernels.<slot>[backend]`, backends register with `@cpu_kernel(kernels.<slot>)`
    conv.py        ConvShape: the 16 sizes of a convolution, in the field order C++ and CUDA take
    activation.py  ACT_KIND: activation names -> the kernels' enum codes; the conv-fusable subset
    norm.py        the [outer, D, inner] sizes around a dim; the local response normalisation window
    pool.py        the pooling memory-format rule and the window record
    resample.py    pixel_shuffle geometry
"""
