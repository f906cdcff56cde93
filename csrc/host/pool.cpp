// fastcnn._C.pool: the pooling kernels (csrc/kernels/pool.cpp) behind pybind11.
// Addresses and sizes come from fastcnn/backends/cpu/pool.py, which has checked and allocated
// every tensor; geometry travels as one tuple (N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw).
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>

#include "common/module.h"
#include "kernels/pool.h"

namespace fastcnn {
namespace {

using GeomTuple = std::array<int64_t, 14>;

pool::Geom to_geom(const GeomTuple& t) {
  return {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13]};
}

template <class T>
const PoolFns<T>& fns() {
  if constexpr (sizeof(T) == 4) return pool_kernels().f32;
  else return pool_kernels().f64;
}

void check_indices(int64_t bad, const char* what) {
  if (bad)
    throw std::invalid_argument("indices: " + std::to_string(bad) + " " + what +
                                " indices lie outside the output plane");
}

void max_forward(std::uintptr_t x, std::uintptr_t y, std::uintptr_t idx, GeomTuple g, bool cl, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().max_forward(as_ptr<T>(x), as_ptr<T>(y), as_ptr<int64_t>(idx), to_geom(g), cl);
  });
}

void avg_forward(std::uintptr_t x, std::uintptr_t y, GeomTuple g, bool cl, bool count_include_pad,
                 int64_t divisor_override, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().avg_forward(as_ptr<T>(x), as_ptr<T>(y), to_geom(g), cl, count_include_pad, divisor_override);
  });
}

void avg_backward(std::uintptr_t gy, std::uintptr_t gx, GeomTuple g, bool cl, bool count_include_pad,
                  int64_t divisor_override, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().avg_backward(as_ptr<T>(gy), as_ptr<T>(gx), to_geom(g), cl, count_include_pad, divisor_override);
  });
}

void adaptive_max_forward(std::uintptr_t x, std::uintptr_t y, std::uintptr_t idx, GeomTuple g, bool cl, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().adaptive_max_forward(as_ptr<T>(x), as_ptr<T>(y), as_ptr<int64_t>(idx), to_geom(g), cl);
  });
}

void adaptive_avg_forward(std::uintptr_t x, std::uintptr_t y, GeomTuple g, bool cl, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().adaptive_avg_forward(as_ptr<T>(x), as_ptr<T>(y), to_geom(g), cl);
  });
}

void adaptive_avg_backward(std::uintptr_t gy, std::uintptr_t gx, GeomTuple g, bool cl, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    fns<T>().adaptive_avg_backward(as_ptr<T>(gy), as_ptr<T>(gx), to_geom(g), cl);
  });
}

void index_scatter(std::uintptr_t src, std::uintptr_t idx, std::uintptr_t out, GeomTuple g, bool cl, bool accumulate,
                   int dtype) {
  const int64_t bad = dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return fns<T>().index_scatter(as_ptr<T>(src), as_ptr<int64_t>(idx), as_ptr<T>(out), to_geom(g), cl, accumulate);
  });
  check_indices(bad, "scattered");
}

void index_gather(std::uintptr_t src, std::uintptr_t idx, std::uintptr_t out, GeomTuple g, bool cl, int dtype) {
  const int64_t bad = dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return fns<T>().index_gather(as_ptr<T>(src), as_ptr<int64_t>(idx), as_ptr<T>(out), to_geom(g), cl);
  });
  check_indices(bad, "gathered");
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(pool) {
  using namespace fastcnn;
  namespace py = pybind11;
  m.doc() = "Pooling kernels: fixed and adaptive max/avg pooling, index scatter/gather (NCHW or NHWC).";
  m.def("max_forward", &max_forward, py::arg("x"), py::arg("y"), py::arg("idx"), py::arg("geom"),
        py::arg("channels_last"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("avg_forward", &avg_forward, py::arg("x"), py::arg("y"), py::arg("geom"), py::arg("channels_last"),
        py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("avg_backward", &avg_backward, py::arg("gy"), py::arg("gx"), py::arg("geom"), py::arg("channels_last"),
        py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("adaptive_max_forward", &adaptive_max_forward, py::arg("x"), py::arg("y"), py::arg("idx"), py::arg("geom"),
        py::arg("channels_last"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("adaptive_avg_forward", &adaptive_avg_forward, py::arg("x"), py::arg("y"), py::arg("geom"),
        py::arg("channels_last"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("adaptive_avg_backward", &adaptive_avg_backward, py::arg("gy"), py::arg("gx"), py::arg("geom"),
        py::arg("channels_last"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("index_scatter", &index_scatter, py::arg("src"), py::arg("idx"), py::arg("out"), py::arg("geom"),
        py::arg("channels_last"), py::arg("accumulate"), py::arg("dtype"), FASTCNN_NOGIL);
  m.def("index_gather", &index_gather, py::arg("src"), py::arg("idx"), py::arg("out"), py::arg("geom"),
        py::arg("channels_last"), py::arg("dtype"), FASTCNN_NOGIL);
  // The geometry helpers of pool_geometry.cuh, exposed so tests check the shared CUDA/cpu math.
  m.def("out_size", &pool::out_size, py::arg("in"), py::arg("k"), py::arg("s"), py::arg("pad"), py::arg("dil"),
        py::arg("ceil_mode"));
  m.def("adaptive_begin", &pool::adaptive_begin);
  m.def("adaptive_end", &pool::adaptive_end);
}
