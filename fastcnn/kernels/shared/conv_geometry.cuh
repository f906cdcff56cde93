// Index math of a 2-D convolution shared by the CUDA kernels and the C++ cpu code (and tested from
// Python through fastcnn._C.cuda_geometry). Sizes and coordinates are 64-bit: a flattened index
// over N*C*H*W can pass 2^31.
//
// Conventions: output o reads input i = o*stride - pad + tap*dilation (taps outside read zero);
// `pad` is the top/left padding, the bottom/right padding is implied by the output size.
#pragma once
#include "common.cuh"
#include "conv_shape.cuh"

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include <cmath>
using std::cos;
using std::sin;
#endif

namespace fastcnn {

// a / b and a % b for a >= 0, b > 0: one 32-bit hardware division when both fit (the usual case),
// 64-bit division otherwise, so flat indices stay exact past 2^31 without paying for it below.
FASTCNN_HD long long div_fast(long long a, long long b) {
  if (((a | b) >> 31) == 0) return static_cast<long long>(static_cast<unsigned>(a) / static_cast<unsigned>(b));
  return a / b;
}
FASTCNN_HD void divmod(long long a, long long b, long long& q, long long& r) {
  q = div_fast(a, b);
  r = a - q * b;
}
namespace geom {

using fastcnn::ConvShape;  // conv_shape.cuh: the one record of the C++ and CUDA sides

// Output extent for an input of `in` with `pad_begin` / `pad_end` zeros on the two sides.
FASTCNN_HD long long conv_out_size(long long in, long long kernel, long long stride, long long pad_begin,
                                   long long pad_end, long long dilation) {
  const long long span = dilation * (kernel - 1) + 1;
  const long long padded = in + pad_begin + pad_end;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

// Input coordinate read by output `out` through kernel tap `tap` (may be outside [0, in)).
FASTCNN_HD long long conv_in_coord(long long out, long long tap, long long stride, long long pad,
                                   long long dilation) {
  return out * stride - pad + tap * dilation;
}

// Transposed direction: which output reads input `in` through tap `tap`. Returns that output, or
// -1 if none does (the offset is not a multiple of the stride or lands outside [0, out_size)).
FASTCNN_HD long long conv_out_coord(long long in, long long tap, long long stride, long long pad,
                                    long long dilation, long long out_size) {
  const long long num = in + pad - tap * dilation;
  if (num < 0 || num % stride != 0) return -1;
  const long long out = num / stride;
  return out < out_size ? out : -1;
}

// ---- tiled FFT convolution (stride 1, dilation 1, overlap-save) ----
// A T x T input tile yields (T - kernel + 1) valid outputs per dimension.
FASTCNN_HD long long fft_tile_step(long long tile, long long kernel) { return tile - kernel + 1; }

// Tiles needed to cover `out` outputs with `step` outputs per tile.
FASTCNN_HD long long fft_tile_count(long long out, long long step) { return (out + step - 1) / step; }

// Frequencies kept of a real T x T transform: T rows times the T/2 + 1 non-redundant columns.
FASTCNN_HD long long fft_freq_count(long long tile) { return tile * (tile / 2 + 1); }

// Twiddle exp(-2 pi i * m / T) as (cos, sin) with m reduced mod T first, so large u*f products
// keep full accuracy. `sign` = -1 for the forward transform, +1 for the inverse.
FASTCNN_HD void dft_twiddle(long long m, long long tile, int sign, double* re, double* im) {
  long long r = m % tile;
  if (r < 0) r += tile;
  const double angle = 6.283185307179586476925286766559 * static_cast<double>(r) / static_cast<double>(tile);
  *re = cos(angle);
  *im = sign * sin(angle);
}

}  // namespace geom
}  // namespace fastcnn
