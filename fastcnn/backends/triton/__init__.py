"""triton backend: kernels in fastcnn/kernels/triton/, registered by kernels.py."""
