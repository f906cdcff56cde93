"""cuda backend: CUDA C++ kernels in fastcnn/kernels/cuda/*.cu, compiled at first use with NVRTC
through cupy and launched on torch's current stream."""
