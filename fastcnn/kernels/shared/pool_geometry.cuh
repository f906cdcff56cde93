// Window and output-size math of the pooling family, shared by the CUDA kernels (pool.cu) and the
// C++ cpu kernels (csrc/kernels/pool.cpp includes this file), so the cpu tests exercise it too.
// Plain C++ only: no standard library (NVRTC has none), 64-bit sizes throughout.
#pragma once

#include "common.cuh"

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN  // distinct per cpu ISA copy (see csrc/common/isa.h)
namespace pool {

typedef long long i64;

// Geometry of one fixed-window pooling call (max_pool2d / avg_pool2d): input planes HxW, output
// planes PxQ, kernel kh x kw, stride, padding (top/left; bottom/right implied by P, Q), dilation.
struct Geom {
  i64 N, C, H, W, P, Q;
  i64 kh, kw, sh, sw, ph, pw, dh, dw;
};

FASTCNN_HD i64 min_i64(i64 a, i64 b) { return a < b ? a : b; }
FASTCNN_HD i64 max_i64(i64 a, i64 b) { return a > b ? a : b; }
// Floor and ceiling division for b > 0 and any sign of a.
FASTCNN_HD i64 floor_div(i64 a, i64 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
FASTCNN_HD i64 ceil_div(i64 a, i64 b) { return -floor_div(-a, b); }

// Output length of one spatial dimension, as torch's pooling_output_shape: with ceil_mode the
// last window must still start inside the input or the left padding.
FASTCNN_HD i64 out_size(i64 in, i64 k, i64 s, i64 pad, i64 dil, bool ceil_mode) {
  const i64 span = in + 2 * pad - dil * (k - 1) - 1;
  i64 out = floor_div(span + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

// Taps [first, last) of a dilated window starting at `start` that fall inside [0, in).
FASTCNN_HD i64 first_tap(i64 start, i64 dil) { return start < 0 ? ceil_div(-start, dil) : 0; }
FASTCNN_HD i64 last_tap(i64 start, i64 k, i64 dil, i64 in) {
  return min_i64(k, ceil_div(in - start, dil));
}

// Outputs [lo, hi) of one dimension whose whole window lies inside the input (the vectorised
// interior); the ones outside need bounds checks.
FASTCNN_HD i64 interior_lo(i64 s, i64 pad) { return ceil_div(pad, s); }
FASTCNN_HD i64 interior_hi(i64 out, i64 in, i64 k, i64 s, i64 pad, i64 dil) {
  // last o with o*s - pad + (k-1)*dil <= in - 1
  return max_i64(0, min_i64(out, floor_div(in - 1 + pad - (k - 1) * dil, s) + 1));
}

// avg_pool2d's window of output o along one dimension, clipped to the input, and the length its
// divisor counts (torch: with count_include_pad the window clipped to the padded input instead).
struct AvgSpan {
  i64 begin, end, count;
};
FASTCNN_HD AvgSpan avg_span(i64 o, i64 in, i64 k, i64 s, i64 pad, bool count_include_pad) {
  i64 begin = o * s - pad;
  i64 end = min_i64(begin + k, in + pad);
  const i64 padded_len = end - begin;
  begin = max_i64(begin, 0);
  end = min_i64(end, in);
  AvgSpan r;
  r.begin = begin;
  r.end = end;
  r.count = count_include_pad ? padded_len : end - begin;
  return r;
}

// Adaptive pooling: output o of `out` covers input [adaptive_begin, adaptive_end) of `in`.
FASTCNN_HD i64 adaptive_begin(i64 o, i64 in, i64 out) { return (o * in) / out; }
FASTCNN_HD i64 adaptive_end(i64 o, i64 in, i64 out) { return ((o + 1) * in + out - 1) / out; }
// Largest adaptive window along one dimension (bounds the loops of the GPU kernels).
FASTCNN_HD i64 adaptive_max_window(i64 in, i64 out) { return ceil_div(in, out) + (in % out != 0 ? 1 : 0); }

}  // namespace pool
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
