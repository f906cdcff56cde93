// The ConvShape record (fastcnn/kernels/shared/conv_shape.cuh) from Python's flat list `list(shape)`
// of fastcnn/contracts/conv.py ConvShape, in its field order: every convolution binding takes it.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "conv_shape.cuh"

namespace fastcnn {

inline ConvShape conv_shape_from_list(const std::vector<int64_t>& v) {
  if (v.size() != 16)
    throw std::invalid_argument("shape: expected 16 sizes (N C H W K R S P Q sh sw ph pw dh dw G), got " +
                                std::to_string(v.size()));
  return ConvShape{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
}

// std::invalid_argument unless s has stride 1 and dilation 1 (the tile-transform algorithms, fft and
// winograd; the Python side checks first with fastcnn/contracts/conv.py, this guards the raw entry).
inline void require_unit_stride_dilation(const ConvShape& s, const char* algo) {
  if (s.sh != 1 || s.sw != 1 || s.dh != 1 || s.dw != 1)
    throw std::invalid_argument(std::string("shape: the ") + algo + " convolution takes stride 1 and dilation 1 only");
}

}  // namespace fastcnn
