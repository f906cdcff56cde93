// How a host file adds its functions to fastcnn._C without a central list to edit:
//
//   FASTCNN_BIND(pool) {            // defines the submodule fastcnn._C.pool
//     m.def("max_pool2d_forward", &max_pool2d_forward, FASTCNN_NOGIL);
//   }
//
// Tensors cross the boundary as raw addresses (tensor.data_ptr()) plus sizes: the Python side
// (fastcnn/backends/cpu/) has already checked dtype, device, contiguity and shapes, allocates the
// outputs, and passes the dtype as fastcnn::Dtype. The C++ side therefore needs no torch headers,
// builds in seconds and works with any torch version.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastcnn {

using BindFn = void (*)(pybind11::module_&);
struct RegisterBinding {
  RegisterBinding(const char* family, BindFn fn);
};
void bind_all(pybind11::module_& root);

enum class Dtype : int { float32 = 0, float64 = 1 };

// Calls body(T{}) with T = float or double according to dtype.
template <class Body>
decltype(auto) dispatch_float(Dtype dtype, Body&& body) {
  switch (dtype) {
    case Dtype::float32: return body(float{});
    case Dtype::float64: return body(double{});
  }
  throw std::invalid_argument("dtype: fastcnn cpu kernels take float32 or float64");
}

template <class T>
inline T* as_ptr(std::uintptr_t address) { return reinterpret_cast<T*>(address); }

}  // namespace fastcnn

#define FASTCNN_NOGIL pybind11::call_guard<pybind11::gil_scoped_release>()

#define FASTCNN_BIND(family)                                                             \
  static void fastcnn_bind_##family(pybind11::module_& m);                               \
  static ::fastcnn::RegisterBinding fastcnn_register_##family(#family, &fastcnn_bind_##family); \
  static void fastcnn_bind_##family(pybind11::module_& m)
