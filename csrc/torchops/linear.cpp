// fastcnn_eager::linear: y = act(x[M,K] @ w[N,K]^T + b[N]) on fastcnn's GEMM (csrc/kernels/gemm.cpp),
// the same kernel calls as fastcnn/ops/linear.py's _Linear (so the same results): the bias rows are
// the GEMM's C operand (beta = 1), the fused activation (act: a fastcnn::Act code, 0 = none) runs in
// place over y while it is still in cache, and the backward goes through it from the saved output
// before the two GEMMs (one node for the layer, as conv2d's); the bias gradient is gy^T @ ones.
#include "kernels/gemm.h"
#include "torchops/eager_op.h"
#include "torchops/fused_activation.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace fastcnn::eager {
namespace {

// alpha = 1; row strides of at least 1, as the Python kernel wrapper passes them for empty matrices.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  lda = std::max<int64_t>(1, lda), ldb = std::max<int64_t>(1, ldb), ldc = std::max<int64_t>(1, ldc);
  if constexpr (sizeof(T) == 4)
    gemm_f32(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_f64(trans_a, trans_b, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}

struct LinearBackward : BackwardNode<LinearBackward> {
  static constexpr const char* kName = "fastcnn::LinearBackward";
  SavedVariable x, w, y;  // contiguous [M,K] and [N,K]; y: the output, only with an activation
  int64_t act = 0;
  double act_param = 0;
  bool has_bias = false;

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor xs = x.unpack(), ws = w.unpack();
    at::Tensor gy = grad.contiguous();
    // through the fused activation, from the output (as conv2d's node)
    if (act != 0) gy = through_fused_activation(gy, y.unpack(getptr()), act, act_param);
    const int64_t M = xs.size(0), K = xs.size(1), N = ws.size(0);
    at::Tensor gx, gw, gb;
    dispatch_float(xs, [&](auto t) {
      using T = decltype(t);
      if (should_compute_output(0)) {
        gx = output_empty({M, K}, xs.options());
        gemm<T>(false, false, M, K, N, ptr<const T>(gy), N, ptr<const T>(ws), K, 0, ptr<T>(gx), K);
      }
      if (should_compute_output(1)) {
        gw = output_empty({N, K}, xs.options());
        gemm<T>(true, false, N, K, M, ptr<const T>(gy), N, ptr<const T>(xs), K, 0, ptr<T>(gw), K);
      }
      if (has_bias && should_compute_output(2)) {  // column sums of gy
        const std::vector<T> ones(M, T(1));
        gb = output_empty({N}, xs.options());
        gemm<T>(true, false, N, 1, M, ptr<const T>(gy), N, ones.data(), 1, 0, ptr<T>(gb), 1);
      }
    });
    if (has_bias) return {gx, gw, gb};
    return {gx, gw};
  }

  void release_variables() override {
    x.reset_data();
    w.reset_data();
    y.reset_data();
  }
};

at::Tensor linear(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias_in,
                  int64_t act, double act_param) {
  follow_torch_threads();
  const at::Tensor bias = bias_in.has_value() ? *bias_in : at::Tensor();
  const bool grad = records_grad({&input, &weight, &bias});
  at::Tensor x, w, b, y;
  {
    at::NoGradGuard no_grad;  // copies made here are not part of the graph
    x = input.contiguous(), w = weight.contiguous();
    if (bias.defined()) b = bias.contiguous();
    y = output_empty({x.size(0), w.size(0)}, x.options());
  }
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  dispatch_float(x, [&](auto t) {
    using T = decltype(t);
    T beta = 0;
    if (b.defined() && N > 0) {  // every row of y starts as the bias
      for (int64_t i = 0; i < M; ++i) std::memcpy(ptr<T>(y) + i * N, ptr<const T>(b), N * sizeof(T));
      beta = 1;
    }
    gemm<T>(false, true, M, N, K, ptr<const T>(x), K, ptr<const T>(w), K, beta, ptr<T>(y), N);
    apply_fused_activation(ptr<T>(y), M * N, act, act_param);
  });
  if (grad) {
    auto node = b.defined() ? connect<LinearBackward>(y, input, weight, bias) : connect<LinearBackward>(y, input, weight);
    node->x = SavedVariable(x, false);
    node->w = SavedVariable(w, false);
    if (act != 0) node->y = SavedVariable(y, true);
    node->act = act, node->act_param = act_param, node->has_bias = b.defined();
  }
  return y;
}

}  // namespace
}  // namespace fastcnn::eager

// F.linear's argument names and default (public_op's lean plan for a 2-D input without an activation is
// this op itself), then the fused activation's code and parameter.
FASTCNN_EAGER_OP("linear",
                 "linear(Tensor input, Tensor weight, Tensor? bias=None, int act=0, float act_param=0.) -> Tensor",
                 &fastcnn::eager::linear)
