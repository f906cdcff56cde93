// The convolution algorithms' entry points, one function per (algorithm, pass), on typed pointers and
// a ConvShape: what the pybind bindings (csrc/host/conv_{direct,im2col,fft,winograd}.cpp) and the eager
// op (csrc/torchops/conv.cpp) both call, so the two paths run the same code. No pybind11 and no torch
// headers here: both kinds of file include it.
//
// Operands are contiguous NCHW; `shape` is the forward convolution (fastcnn/contracts/conv.py field
// order). fft and winograd throw std::invalid_argument for a shape they cannot run (the Python side
// checks first; these guard the raw entries).
#pragma once
#include <stdexcept>
#include <string>

#include "host/conv_shape.h"
#include "kernels/conv_direct.h"
#include "kernels/conv_fft.h"
#include "kernels/conv_im2col.h"
#include "kernels/conv_winograd.h"

namespace fastcnn::conv_calls {

// ---- direct (csrc/kernels/conv_direct*.cpp)

template <class T>
const ConvDirectFns<T>& direct_fns() {
  if constexpr (sizeof(T) == 4) return conv_direct_kernels().f32;
  else return conv_direct_kernels().f64;
}

template <class T>
void direct_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act, double act_param) {
  direct_fns<T>().forward(s, x, w, bias, y, act, static_cast<T>(act_param));
}

template <class T>
void direct_backward_input(const ConvShape& s, const T* gy, const T* w, T* gx) {
  direct_fns<T>().backward_input(s, gy, w, gx);
}

template <class T>
void direct_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw) {
  direct_fns<T>().backward_weight(s, x, gy, gw);
}

// ---- im2col (csrc/kernels/conv_im2col.cpp); its table also holds channel_sum and bias_act

template <class T>
void im2col_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act, double p0,
                    double p1 = 0.0) {
  conv_im2col_kernels().get<T>().forward(s, x, w, bias, y, act, T(p0), T(p1));
}

template <class T>
void im2col_backward_input(const ConvShape& s, const T* gy, const T* w, T* gx) {
  conv_im2col_kernels().get<T>().backward_input(s, gy, w, gx);
}

template <class T>
void im2col_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw) {
  conv_im2col_kernels().get<T>().backward_weight(s, x, gy, gw);
}

// ---- fft (csrc/kernels/conv_fft.cpp); each returns the transform size it used

// The transform size for correlation s: `tile` if given (non-zero), else the cost model's choice.
inline int fft_resolve_tile(int tile, const ConvShape& s) {
  require_unit_stride_dilation(s, "fft");
  if (s.R > kFftMaxKernel || s.S > kFftMaxKernel)
    throw std::invalid_argument("weight: the fft convolution takes kernels up to " + std::to_string(kFftMaxKernel) +
                                "x" + std::to_string(kFftMaxKernel) + ", got " + std::to_string(s.R) + "x" +
                                std::to_string(s.S) + "; use algo='direct' or 'im2col'");
  if (tile == 0) tile = fft_choose_tile(s);
  if (tile != 8 && tile != 16 && tile != 32)
    throw std::invalid_argument("tile: fft transform size must be 8, 16 or 32, got " + std::to_string(tile));
  if (s.R > tile || s.S > tile)
    throw std::invalid_argument("weight: a " + std::to_string(s.R) + "x" + std::to_string(s.S) +
                                " kernel does not fit a " + std::to_string(tile) + "x" + std::to_string(tile) +
                                " fft tile");
  return tile;
}

// y = act(bias + the correlation s of x with w (flip_transpose: with the flipped, channel-transposed w)).
template <class T>
int fft_correlate(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, bool flip_transpose, int act,
                  double act_param, int tile) {
  FftConvArgs a{x, w, bias, y, s, flip_transpose, act, act_param, fft_resolve_tile(tile, s)};
  const ConvFftKernels& k = conv_fft_kernels();
  if constexpr (sizeof(T) == 8) k.forward_f64(a); else k.forward_f32(a);
  return a.tile;
}

template <class T>
int fft_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act, double act_param,
                int tile = 0) {
  return fft_correlate(s, x, w, bias, y, false, act, act_param, tile);
}

// gx: the correlation of gy with the flipped, channel-transposed w.
template <class T>
int fft_backward_input(const ConvShape& s, const T* gy, const T* w, T* gx, int tile = 0) {
  require_unit_stride_dilation(s, "fft");
  return fft_correlate<T>(input_gradient_correlation(s), gy, w, nullptr, gx, true, 0, 0.0, tile);
}

// gw: the correlation of x with gy, summed over the batch.
template <class T>
int fft_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw, int tile = 0) {
  FftWeightGradArgs a{x, gy, gw, s, fft_resolve_tile(tile, s)};
  const ConvFftKernels& k = conv_fft_kernels();
  if constexpr (sizeof(T) == 8) k.weight_grad_f64(a); else k.weight_grad_f32(a);
  return a.tile;
}

// ---- winograd F(4x4,3x3) / F(6x6,3x3) (csrc/kernels/conv_winograd.cpp); forward and backward-input
// return the output tile they used

inline const ConvShape& winograd_checked(const ConvShape& s) {
  require_unit_stride_dilation(s, "winograd");
  if (s.R != 3 || s.S != 3) throw std::invalid_argument("shape: the winograd convolution takes 3x3 kernels only");
  return s;
}

// The output tile for correlation s of elem_size-byte elements: `tile` if given (non-zero), else the
// measured choice for the active ISA.
inline int winograd_resolve_tile(int tile, const ConvShape& s, int elem_size) {
  if (tile == 0) tile = winograd_choose_tile(s, elem_size, active_isa());
  if (tile != 4 && tile != 6)
    throw std::invalid_argument("tile: winograd output tile must be 4 or 6, got " + std::to_string(tile));
  return tile;
}

template <class T>
int winograd_correlate(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, bool flip_transpose, int act,
                       double act_param, int tile) {
  WinogradConvArgs a{x, w, bias, y, s, flip_transpose, act, act_param, winograd_resolve_tile(tile, s, int(sizeof(T)))};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if constexpr (sizeof(T) == 8) k.forward_f64(a); else k.forward_f32(a);
  return a.tile;
}

template <class T>
int winograd_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act, double act_param,
                     int tile = 0) {
  return winograd_correlate(winograd_checked(s), x, w, bias, y, false, act, act_param, tile);
}

template <class T>
int winograd_backward_input(const ConvShape& s, const T* gy, const T* w, T* gx, int tile = 0) {
  return winograd_correlate<T>(input_gradient_correlation(winograd_checked(s)), gy, w, nullptr, gx, true, 0, 0.0, tile);
}

// How the forward (or with backward_input the input gradient) of convolution s runs with `tile`
// (0: the measured choice) on the active ISA.
inline WinogradPlan winograd_plan(const ConvShape& s, int elem_size, int tile, bool backward_input) {
  const ConvShape c = backward_input ? input_gradient_correlation(winograd_checked(s)) : winograd_checked(s);
  return conv_winograd_kernels().plan(c, elem_size, winograd_resolve_tile(tile, c, elem_size));
}

template <class T>
void winograd_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw) {
  WinogradWeightArgs a{x, gy, gw, winograd_checked(s)};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if constexpr (sizeof(T) == 8) k.backward_weight_f64(a); else k.backward_weight_f32(a);
}

// ---- one pass by algorithm code (fastcnn/ops/conv.py _EAGER_CODE: the order of kernels.CONV_ALGOS)

enum class Algo : int { direct = 0, im2col = 1, fft = 2, winograd = 3 };

inline Algo algo_of(int64_t code) {
  if (code < 0 || code > 3) throw std::invalid_argument("algos: expected codes 0-3, got " + std::to_string(code));
  return static_cast<Algo>(code);
}

template <class T>
void forward(Algo algo, const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act, double act_param) {
  switch (algo) {
    case Algo::direct: return direct_forward(s, x, w, bias, y, act, act_param);
    case Algo::im2col: return im2col_forward(s, x, w, bias, y, act, act_param);
    case Algo::fft: fft_forward(s, x, w, bias, y, act, act_param); return;
    case Algo::winograd: winograd_forward(s, x, w, bias, y, act, act_param); return;
  }
}

template <class T>
void backward_input(Algo algo, const ConvShape& s, const T* gy, const T* w, T* gx) {
  switch (algo) {
    case Algo::direct: return direct_backward_input(s, gy, w, gx);
    case Algo::im2col: return im2col_backward_input(s, gy, w, gx);
    case Algo::fft: fft_backward_input(s, gy, w, gx); return;
    case Algo::winograd: winograd_backward_input(s, gy, w, gx); return;
  }
}

template <class T>
void backward_weight(Algo algo, const ConvShape& s, const T* x, const T* gy, T* gw) {
  switch (algo) {
    case Algo::direct: return direct_backward_weight(s, x, gy, gw);
    case Algo::im2col: return im2col_backward_weight(s, x, gy, gw);
    case Algo::fft: fft_backward_weight(s, x, gy, gw); return;
    case Algo::winograd: return winograd_backward_weight(s, x, gy, gw);
  }
}

}  // namespace fastcnn::conv_calls
