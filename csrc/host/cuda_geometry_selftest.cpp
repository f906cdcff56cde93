// fastcnn._C.cuda_geometry: the __host__ __device__ index math of the cuda backend
// (fastcnn/kernels/cuda/conv_geometry.cuh), compiled here as plain C++ so the cpu test suite checks
// the very header the CUDA kernels include (tests/backends/cuda/test_cuda_conv.py), even on machines without a GPU.
#include <pybind11/pybind11.h>

#include <utility>

#include "common/module.h"
#include "conv_geometry.cuh"

namespace py = pybind11;
namespace g = fastcnn::geom;

FASTCNN_BIND(cuda_geometry) {
  m.doc() = "conv_geometry.cuh (the cuda kernels' index math) compiled for the host, for tests";
  m.def("conv_out_size", &g::conv_out_size, py::arg("in_size"), py::arg("kernel"), py::arg("stride"),
        py::arg("pad_begin"), py::arg("pad_end"), py::arg("dilation"));
  m.def("conv_in_coord", &g::conv_in_coord, py::arg("out"), py::arg("tap"), py::arg("stride"), py::arg("pad"),
        py::arg("dilation"));
  m.def("conv_out_coord", &g::conv_out_coord, py::arg("in_coord"), py::arg("tap"), py::arg("stride"),
        py::arg("pad"), py::arg("dilation"), py::arg("out_size"));
  m.def("fft_tile_step", &g::fft_tile_step, py::arg("tile"), py::arg("kernel"));
  m.def("fft_tile_count", &g::fft_tile_count, py::arg("out"), py::arg("step"));
  m.def("fft_freq_count", &g::fft_freq_count, py::arg("tile"));
  m.def(
      "dft_twiddle",
      [](long long m, long long tile, int sign) {
        double re = 0.0, im = 0.0;
        g::dft_twiddle(m, tile, sign, &re, &im);
        return std::make_pair(re, im);
      },
      py::arg("m"), py::arg("tile"), py::arg("sign"));
}
