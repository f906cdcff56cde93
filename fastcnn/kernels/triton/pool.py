"""Triton kernels of the pooling family (kernel contract: fastcnn/ops/pool.py).

Only builtins of triton.language are used (tl.full, not tl.zeros): the @jit helpers of
triton.language.standard fail under the interpreter copy that backends/triton/_lib.py loads.

Each program handles BLOCK elements of the tensor it writes, numbered in logical NCHW order, and
addresses every tensor through its element strides, so NCHW and channels_last run unconverted.
Same window math as fastcnn/kernels/cuda/pool_geometry.cuh (the cpu/CUDA header):
  fixed window of output o: start o*s - pad, taps start + t*dil, t < k, those inside the input;
  avg divisor: window clipped to the padded input (count_include_pad) or to the input;
  adaptive window of output o: [floor(o*in/out), ceil((o+1)*in/out)).
Launch shape: the wide stream of _stream.py (8 elements a thread). When the streamed tensors are
NCHW-contiguous (CONTIG) they are addressed by the flat index itself, so those accesses are
contiguous and sm_90 gets 16-byte ld/st.global.v4; the window reads stay gathers (taps SW apart,
clipped per element: no wide loads), as do the index scatter's writes, and channels_last tensors
take the strided addresses.
Backward of average pooling gathers over the outputs covering each input element (no atomics);
the accumulating index scatter (max-pooling backward) uses atomic adds, since overlapping windows
may pick the same input element.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.pool import empty, is_channels_last

from ._stream import STREAM_BLOCK, STREAM_WARPS, stream_grid


@triton.jit
def _block_coords(total, C, A, B, BLOCK: tl.constexpr):
    """This program's BLOCK elements of an [N, C, A, B] tensor (total elements, NCHW order): their
    flat index, which are in range, and their (n, c, a, b)."""
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    b = e % B
    t = e // B
    a = t % A
    t = t // A
    return e, e < total, t // C, t % C, a, b


@triton.jit
def _offset(e, n, c, a, b, sn, sc, sh, sw, CONTIG: tl.constexpr):
    """Element offset of (n, c, a, b) in a tensor with these strides; the flat index e itself when the
    tensor is NCHW-contiguous (provably contiguous addresses: vector loads/stores)."""
    if CONTIG:
        return e
    return n * sn + c * sc + a * sh + b * sw


@triton.jit
def _first_tap(start, dil):
    # first t with start + t*dil >= 0 (operands kept non-negative: no signed division)
    return tl.where(start < 0, (-start + dil - 1) // dil, 0)


@triton.jit
def _max_pool_fwd(x_ptr, y_ptr, idx_ptr, total, C, H, W, P, Q, KH, KW, SH, SW, PH, PW, DH, DW,
                  xsn, xsc, xsh, xsw, ysn, ysc, ysh, ysw, WITH_IDX: tl.constexpr, CONTIG: tl.constexpr,
                  BLOCK: tl.constexpr):
    e, live, n, c, p, q = _block_coords(total, C, P, Q, BLOCK)
    hs = p * SH - PH
    ws = q * SW - PW
    best = tl.full([BLOCK], float("-inf"), x_ptr.dtype.element_ty)
    best_i = (hs + _first_tap(hs, DH) * DH) * W + ws + _first_tap(ws, DW) * DW
    x_base = x_ptr + n * xsn + c * xsc
    for i in range(0, KH):
        h = hs + i * DH
        for j in range(0, KW):
            w = ws + j * DW
            valid = live & (h >= 0) & (h < H) & (w >= 0) & (w < W)
            v = tl.load(x_base + h * xsh + w * xsw, mask=valid, other=float("-inf"))
            take = valid & ((v > best) | (v != v))  # torch's rule: greater, or NaN
            best = tl.where(take, v, best)
            best_i = tl.where(take, h * W + w, best_i)
    out = _offset(e, n, c, p, q, ysn, ysc, ysh, ysw, CONTIG)
    tl.store(y_ptr + out, best, mask=live)
    if WITH_IDX:
        tl.store(idx_ptr + out, best_i, mask=live)


@triton.jit
def _avg_span(o, size, K, S, PAD, COUNT_PAD):
    begin = o * S - PAD
    end = tl.minimum(begin + K, size + PAD)
    b = tl.maximum(begin, 0)
    e = tl.minimum(end, size)
    count = tl.where(COUNT_PAD, end - begin, e - b)
    return begin, b, e, count


@triton.jit
def _avg_pool_fwd(x_ptr, y_ptr, total, C, H, W, P, Q, KH, KW, SH, SW, PH, PW, DIVISOR,
                  xsn, xsc, xsh, xsw, ysn, ysc, ysh, ysw, COUNT_PAD: tl.constexpr, CONTIG: tl.constexpr,
                  BLOCK: tl.constexpr):
    e, live, n, c, p, q = _block_coords(total, C, P, Q, BLOCK)
    hs, hb, he, hc = _avg_span(p, H, KH, SH, PH, COUNT_PAD)
    ws, wb, we, wc = _avg_span(q, W, KW, SW, PW, COUNT_PAD)
    acc = tl.full([BLOCK], 0.0, x_ptr.dtype.element_ty)
    x_base = x_ptr + n * xsn + c * xsc
    for i in range(0, KH):
        h = hs + i
        for j in range(0, KW):
            w = ws + j
            valid = live & (h >= hb) & (h < he) & (w >= wb) & (w < we)
            acc += tl.load(x_base + h * xsh + w * xsw, mask=valid, other=0.0)
    div = tl.where(DIVISOR != 0, DIVISOR, hc * wc).to(acc.dtype)
    tl.store(y_ptr + _offset(e, n, c, p, q, ysn, ysc, ysh, ysw, CONTIG), acc / div, mask=live)


@triton.jit
def _avg_pool_bwd(gy_ptr, gx_ptr, total, C, H, W, P, Q, KH, KW, SH, SW, PH, PW, DIVISOR, MAXP, MAXQ,
                  gsn, gsc, gsh, gsw, xsn, xsc, xsh, xsw, COUNT_PAD: tl.constexpr, CONTIG: tl.constexpr,
                  BLOCK: tl.constexpr):
    e, live, n, c, h, w = _block_coords(total, C, H, W, BLOCK)
    # outputs p with p*SH - PH <= h < p*SH - PH + KH (likewise q)
    a = h + PH - KH
    p0 = tl.where(a >= 0, a // SH + 1, 0)
    p1 = tl.minimum(P, (h + PH) // SH + 1)
    b = w + PW - KW
    q0 = tl.where(b >= 0, b // SW + 1, 0)
    q1 = tl.minimum(Q, (w + PW) // SW + 1)
    acc = tl.full([BLOCK], 0.0, gy_ptr.dtype.element_ty)
    g_base = gy_ptr + n * gsn + c * gsc
    for tp in range(0, MAXP):
        p = p0 + tp
        hs, hb, he, hc = _avg_span(p, H, KH, SH, PH, COUNT_PAD)
        for tq in range(0, MAXQ):
            q = q0 + tq
            ws, wb, we, wc = _avg_span(q, W, KW, SW, PW, COUNT_PAD)
            valid = live & (p < p1) & (q < q1)
            div = tl.where(DIVISOR != 0, DIVISOR, tl.where(valid, hc * wc, 1)).to(acc.dtype)
            g = tl.load(g_base + p * gsh + q * gsw, mask=valid, other=0.0)
            acc += tl.where(valid, g / div, 0.0)
    tl.store(gx_ptr + _offset(e, n, c, h, w, xsn, xsc, xsh, xsw, CONTIG), acc, mask=live)


@triton.jit
def _adaptive_bounds(o, size, out):
    return (o * size) // out, ((o + 1) * size + out - 1) // out


@triton.jit
def _adaptive_fwd(x_ptr, y_ptr, idx_ptr, total, C, H, W, P, Q, MAXH, MAXW,
                  xsn, xsc, xsh, xsw, ysn, ysc, ysh, ysw, IS_MAX: tl.constexpr, CONTIG: tl.constexpr,
                  BLOCK: tl.constexpr):
    e, live, n, c, p, q = _block_coords(total, C, P, Q, BLOCK)
    h0, h1 = _adaptive_bounds(p, H, P)
    w0, w1 = _adaptive_bounds(q, W, Q)
    x_base = x_ptr + n * xsn + c * xsc
    if IS_MAX:
        acc = tl.full([BLOCK], float("-inf"), x_ptr.dtype.element_ty)
    else:
        acc = tl.full([BLOCK], 0.0, x_ptr.dtype.element_ty)
    best_i = h0 * W + w0
    for i in range(0, MAXH):
        h = h0 + i
        for j in range(0, MAXW):
            w = w0 + j
            valid = live & (h < h1) & (w < w1)
            if IS_MAX:
                v = tl.load(x_base + h * xsh + w * xsw, mask=valid, other=float("-inf"))
                take = valid & ((v > acc) | (v != v))
                acc = tl.where(take, v, acc)
                best_i = tl.where(take, h * W + w, best_i)
            else:
                acc += tl.load(x_base + h * xsh + w * xsw, mask=valid, other=0.0)
    out = _offset(e, n, c, p, q, ysn, ysc, ysh, ysw, CONTIG)
    if IS_MAX:
        tl.store(idx_ptr + out, best_i, mask=live)
    else:
        acc = acc / ((h1 - h0) * (w1 - w0)).to(acc.dtype)
    tl.store(y_ptr + out, acc, mask=live)


@triton.jit
def _adaptive_avg_bwd(gy_ptr, gx_ptr, total, C, H, W, P, Q, MAXP, MAXQ,
                      gsn, gsc, gsh, gsw, xsn, xsc, xsh, xsw, CONTIG: tl.constexpr, BLOCK: tl.constexpr):
    e, live, n, c, h, w = _block_coords(total, C, H, W, BLOCK)
    p0 = (h * P) // H
    q0 = (w * Q) // W
    acc = tl.full([BLOCK], 0.0, gy_ptr.dtype.element_ty)
    g_base = gy_ptr + n * gsn + c * gsc
    for tp in range(0, MAXP):
        p = p0 + tp
        hb, he = _adaptive_bounds(p, H, P)
        for tq in range(0, MAXQ):
            q = q0 + tq
            wb, we = _adaptive_bounds(q, W, Q)
            valid = live & (p < P) & (q < Q) & (h >= hb) & (h < he) & (w >= wb) & (w < we)
            g = tl.load(g_base + p * gsh + q * gsw, mask=valid, other=0.0)
            acc += tl.where(valid, g / ((he - hb) * (we - wb)).to(acc.dtype), 0.0)
    tl.store(gx_ptr + _offset(e, n, c, h, w, xsn, xsc, xsh, xsw, CONTIG), acc, mask=live)


@triton.jit
def _index_scatter(src_ptr, idx_ptr, out_ptr, total, C, H, W, P, Q,
                   ssn, ssc, ssh, ssw, osn, osc, osh, osw, ACCUMULATE: tl.constexpr, CONTIG: tl.constexpr,
                   BLOCK: tl.constexpr):
    e, live, n, c, p, q = _block_coords(total, C, P, Q, BLOCK)
    at = _offset(e, n, c, p, q, ssn, ssc, ssh, ssw, CONTIG)  # src and indices: the read stream
    k = tl.load(idx_ptr + at, mask=live, other=0)
    valid = live & (k >= 0) & (k < H * W)  # never write out of bounds
    k = tl.where(valid, k, 0)
    v = tl.load(src_ptr + at, mask=live, other=0.0)  # masked by `live` (uniform per vector): a wide load
    dst = out_ptr + n * osn + c * osc + (k // W) * osh + (k % W) * osw
    if ACCUMULATE:
        tl.atomic_add(dst, v, mask=valid)
    else:
        tl.store(dst, v, mask=valid)


@triton.jit
def _index_gather(src_ptr, idx_ptr, out_ptr, total, C, H, W, P, Q,
                  ssn, ssc, ssh, ssw, osn, osc, osh, osw, CONTIG: tl.constexpr, BLOCK: tl.constexpr):
    e, live, n, c, p, q = _block_coords(total, C, P, Q, BLOCK)
    at = _offset(e, n, c, p, q, osn, osc, osh, osw, CONTIG)  # indices and out: the stream
    k = tl.load(idx_ptr + at, mask=live, other=0)
    valid = live & (k >= 0) & (k < H * W)
    k = tl.where(valid, k, 0)
    v = tl.load(src_ptr + n * ssn + c * ssc + (k // W) * ssh + (k % W) * ssw, mask=valid, other=0.0)
    tl.store(out_ptr + at, v, mask=live)


# --------------------------------------------------------------------------------------- launchers

def launch(kernel, streams, *args, **constexprs):
    """One program per STREAM_BLOCK elements of streams[0] (the tensor walked in NCHW order); CONTIG
    when every streamed tensor is NCHW-contiguous."""
    streams = [t for t in streams if t is not None]
    kernel[stream_grid(streams[0].numel())](*args, CONTIG=all(t.is_contiguous() for t in streams),
                                            BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS, **constexprs)


def _cdiv(a, b):
    return -(-a // b)


@triton_kernel(kernels.max_pool2d_forward)
def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_hw, with_indices):
    n, c, h, w = x.shape
    cl = is_channels_last(x)
    y = empty((n, c, *out_hw), x, cl)
    idx = empty((n, c, *out_hw), x, cl, torch.int64) if with_indices else None
    if y.numel():
        launch(_max_pool_fwd, (y, idx), x, y, idx if with_indices else y, y.numel(), c, h, w, *out_hw,
                *kernel_size, *stride, *padding, *dilation, *x.stride(), *y.stride(), WITH_IDX=with_indices)
    return y, idx


@triton_kernel(kernels.avg_pool2d_forward)
def avg_pool2d_forward(x, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    y = empty((n, c, *out_hw), x, is_channels_last(x))
    if y.numel():
        launch(_avg_pool_fwd, (y,), x, y, y.numel(), c, h, w, *out_hw, *kernel_size, *stride, *padding,
                int(divisor_override or 0), *x.stride(), *y.stride(), COUNT_PAD=bool(count_include_pad))
    return y


@triton_kernel(kernels.avg_pool2d_backward)
def avg_pool2d_backward(gy, in_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    n, c, p, q = gy.shape
    gx = empty((n, c, *in_hw), gy, is_channels_last(gy))
    if gx.numel():
        max_p, max_q = _cdiv(kernel_size[0], stride[0]), _cdiv(kernel_size[1], stride[1])
        launch(_avg_pool_bwd, (gx,), gy, gx, gx.numel(), c, *in_hw, p, q, *kernel_size, *stride, *padding,
                int(divisor_override or 0), max_p, max_q, *gy.stride(), *gx.stride(),
                COUNT_PAD=bool(count_include_pad))
    return gx


def _max_adaptive_window(size, out):
    return _cdiv(size, out) + (1 if size % out else 0)


def _adaptive_forward(x, out_hw, is_max):
    n, c, h, w = x.shape
    cl = is_channels_last(x)
    y = empty((n, c, *out_hw), x, cl)
    idx = empty((n, c, *out_hw), x, cl, torch.int64) if is_max else None
    if y.numel():
        launch(_adaptive_fwd, (y, idx), x, y, idx if is_max else y, y.numel(), c, h, w, *out_hw,
                _max_adaptive_window(h, out_hw[0]), _max_adaptive_window(w, out_hw[1]), *x.stride(), *y.stride(),
                IS_MAX=is_max)
    return y, idx


@triton_kernel(kernels.adaptive_max_pool2d_forward)
def adaptive_max_pool2d_forward(x, out_hw):
    return _adaptive_forward(x, out_hw, True)


@triton_kernel(kernels.adaptive_avg_pool2d_forward)
def adaptive_avg_pool2d_forward(x, out_hw):
    return _adaptive_forward(x, out_hw, False)[0]


@triton_kernel(kernels.adaptive_avg_pool2d_backward)
def adaptive_avg_pool2d_backward(gy, in_hw):
    n, c, p, q = gy.shape
    gx = empty((n, c, *in_hw), gy, is_channels_last(gy))
    if gx.numel():
        # outputs whose window may cover one input row: from floor(h*P/H), at most ceil(P/H) + 1
        max_p, max_q = _cdiv(p, in_hw[0]) + 1, _cdiv(q, in_hw[1]) + 1
        launch(_adaptive_avg_bwd, (gx,), gy, gx, gx.numel(), c, *in_hw, p, q, max_p, max_q, *gy.stride(),
                *gx.stride())
    return gx


@triton_kernel(kernels.pool_index_scatter)
def pool_index_scatter(src, indices, out_hw, accumulate):
    n, c, p, q = src.shape
    out = empty((n, c, *out_hw), src, is_channels_last(src)).zero_()
    if src.numel():
        launch(_index_scatter, (src, indices), src, indices, out, src.numel(), c, *out_hw, p, q, *src.stride(),
                *out.stride(), ACCUMULATE=bool(accumulate))
    return out


@triton_kernel(kernels.pool_index_gather)
def pool_index_gather(src, indices):
    n, c, h, w = src.shape
    out = empty(indices.shape, src, is_channels_last(src))
    if out.numel():
        launch(_index_gather, (out, indices), src, indices, out, out.numel(), c, h, w, *indices.shape[2:],
                *src.stride(), *out.stride())
    return out
