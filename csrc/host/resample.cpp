// Python bindings of the resampling kernels -> fastcnn._C.resample. Addresses and sizes come from
// fastcnn/backends/cpu/resample.py, which has checked and allocated everything. The dtype travels
// as its int code (fastcnn::Dtype): the activation family already registers the Dtype enum type
// with pybind11, whose types are global to the extension, so a second registration would fail.
#include "common/module.h"
#include "kernels/resample.h"

namespace fastcnn {
namespace {

using std::uintptr_t;

// Both interpolate kernels read one [planes, ., .] tensor and write the other with the same
// arguments: y from x (forward) or gx from gy (backward).
template <bool Backward>
void interpolate(uintptr_t src, uintptr_t dst, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                 bool nearest, bool align_corners, double scale_h, double scale_w, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    const auto& ops = resample_kernels().ops<T>();
    (Backward ? ops.interpolate_backward : ops.interpolate_forward)(as_ptr<const T>(src), as_ptr<T>(dst), planes, H,
                                                                    W, P, Q, nearest, align_corners, scale_h, scale_w);
  });
}

void pixel_shuffle(uintptr_t src, uintptr_t dst, int64_t N, int64_t C, int64_t H, int64_t W, int64_t r, bool to_space,
                   int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    resample_kernels().ops<T>().pixel_shuffle(as_ptr<const T>(src), as_ptr<T>(dst), N, C, H, W, r, to_space);
  });
}

void grid_sample_forward(uintptr_t x, uintptr_t grid, uintptr_t y, int64_t N, int64_t C, int64_t H, int64_t W,
                         int64_t P, int64_t Q, int padding, bool align_corners, bool nearest, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    resample_kernels().ops<T>().grid_sample_forward(as_ptr<const T>(x), as_ptr<const T>(grid), as_ptr<T>(y), N, C, H,
                                                    W, P, Q, padding, align_corners, nearest);
  });
}

// gx / ggrid may be 0 (not wanted).
void grid_sample_backward(uintptr_t gy, uintptr_t x, uintptr_t grid, uintptr_t gx, uintptr_t ggrid, int64_t N,
                          int64_t C, int64_t H, int64_t W, int64_t P, int64_t Q, int padding, bool align_corners,
                          bool nearest, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    resample_kernels().ops<T>().grid_sample_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(grid),
                                                     as_ptr<T>(gx), as_ptr<T>(ggrid), N, C, H, W, P, Q, padding,
                                                     align_corners, nearest);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(resample) {
  m.def("interpolate_forward", &fastcnn::interpolate<false>, FASTCNN_NOGIL);
  m.def("interpolate_backward", &fastcnn::interpolate<true>, FASTCNN_NOGIL);
  m.def("pixel_shuffle", &fastcnn::pixel_shuffle, FASTCNN_NOGIL);
  m.def("grid_sample_forward", &fastcnn::grid_sample_forward, FASTCNN_NOGIL);
  m.def("grid_sample_backward", &fastcnn::grid_sample_backward, FASTCNN_NOGIL);
}
