"""GPU kernel source: Triton kernels (triton/, Python) and CUDA C++ kernels (cuda/, .cu/.cuh).

Kept inside the package (rather than a top-level kernels/ folder mapped with package_dir) so a
source checkout, an editable install and a wheel all import it the same way.
"""
