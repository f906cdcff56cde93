// ConvShape: every size of one grouped 2-D convolution, x[N][C][H][W] * w[K][C/G][R][S] -> y[N][K][P][Q],
// in the field order of fastcnn/contracts/conv.py ConvShape (the flat list the C++ bindings take).
// The one definition for the cpu kernels (csrc/), the CUDA kernels and the host emulator: no
// standard-library includes, so NVRTC, nvcc and the host compiler all read it.
//
// (ph, pw) is the top/left padding; the bottom/right padding is implied by (P, Q).
#pragma once
#include "common.cuh"

namespace fastcnn {

struct ConvShape {
  long long N, C, H, W;  // input
  long long K, R, S;     // filters
  long long P, Q;        // output
  long long sh, sw;      // stride
  long long ph, pw;      // top / left padding
  long long dh, dw;      // dilation
  long long G;           // groups
};

FASTCNN_ISA_INLINE_BEGIN

// The stride-1 correlation that gives the input gradient of convolution s: gy[N][K][P][Q] with the
// flipped, channel-transposed kernels, padded by the dilated kernel span minus the forward's padding
// (negative when ph > (R-1)*dh: the reads just start inside gy). Valid for stride 1 only.
FASTCNN_HD ConvShape input_gradient_correlation(const ConvShape& s) {
  return ConvShape{s.N, s.K, s.P, s.Q, s.C, s.R, s.S, s.H, s.W, 1, 1,
                   (s.R - 1) * s.dh - s.ph, (s.S - 1) * s.dw - s.pw, s.dh, s.dw, s.G};
}

FASTCNN_ISA_INLINE_END

}  // namespace fastcnn
