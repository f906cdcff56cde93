"""Launch shape of the memory-bound element-wise triton kernels (activations, batch-norm's per-channel
FMA, dropout, the element-wise losses, group/layer norm's element-wise pass, and pooling's contiguous
output/gradient stream): each program streams STREAM_BLOCK elements with STREAM_WARPS warps, 8 per thread, so a
float32 thread issues two 16-byte loads per operand (ld.global.v4.b32 on sm_80/sm_90 when the tensors
are 16-byte aligned and the size is a multiple of 16, which triton's launcher specialises on; a
misaligned view gets the scalar copy). Larger programs than the old 1024 cut the per-program overhead
(index setup, scheduling) that kept relu at ~0.5x torch on an H200 (issue 15). The grid stays one
program per block: an element-wise pass has no per-program state a persistent loop could reuse.
tests/backends/triton/test_triton_vectorised.py compiles these launches for sm_90 and checks the vector loads."""
import triton

STREAM_BLOCK = 4096
STREAM_WARPS = 16  # 4096 / (16 * 32) = 8 elements per thread


def stream_grid(n: int) -> tuple:
    return (triton.cdiv(n, STREAM_BLOCK),)
