// fastcnn_eager::batch_norm: batch normalisation of a contiguous x[N, C, ...] on the per-channel
// arithmetic and ISA kernels of csrc/host/batch_norm_math.h, as fastcnn/ops/norm.py's _BatchNorm (the
// same calls, so the same results): training mode updates the running buffers in place, when given.
// A fused activation (act: a fastcnn::Act code, 0 = none) runs in place over y right after, and the
// backward goes through it from the saved output first: one node for BatchNorm + activation.
#include "host/batch_norm_math.h"
#include "torchops/eager_op.h"
#include "torchops/fused_activation.h"

namespace fastcnn::eager {
namespace {

struct BatchNormBackward : BackwardNode<BatchNormBackward> {
  static constexpr const char* kName = "fastcnn::BatchNormBackward";
  SavedVariable x, weight, mean, invstd, y;  // x contiguous; weight undefined when absent; y only with act
  bool training = false, has_weight = false, has_bias = false;
  int64_t act = 0;
  double act_param = 0;

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor xs = x.unpack(), w = weight.unpack(), mu = mean.unpack(), is = invstd.unpack();
    at::Tensor gy = grad.contiguous();
    if (act != 0) gy = through_fused_activation(gy, y.unpack(getptr()), act, act_param);  // from the output
    const int64_t N = xs.size(0), C = xs.size(1), S = xs.numel() / std::max<int64_t>(1, N * C);
    at::Tensor gx, gw, gb;
    if (should_compute_output(0)) gx = output_empty(xs.sizes(), xs.options());
    if (has_weight && should_compute_output(1)) gw = output_empty({C}, xs.options());
    if (has_bias && should_compute_output(2)) gb = output_empty({C}, xs.options());
    dispatch_float(xs, [&](auto t) {
      using T = decltype(t);
      batch_norm::backward<T>(ptr<const T>(gy), ptr<const T>(xs), ptr_or_null<T>(gx), N, C, S, ptr_or_null<const T>(w),
                              ptr<const T>(mu), ptr<const T>(is), training, ptr_or_null<T>(gw), ptr_or_null<T>(gb));
    });
    return {gx, gw, gb};
  }

  void release_variables() override {
    x.reset_data();
    weight.reset_data();
    mean.reset_data();
    invstd.reset_data();
    y.reset_data();
  }
};

// The Python side sends only contiguous x (numel > 0), weight, bias and running buffers
// (fastcnn/ops/norm.py); the running buffers are written in place.
at::Tensor batch_norm(const at::Tensor& input, const c10::optional<at::Tensor>& weight_in,
                      const c10::optional<at::Tensor>& bias_in, const c10::optional<at::Tensor>& running_mean_in,
                      const c10::optional<at::Tensor>& running_var_in, bool training, double momentum, double eps,
                      int64_t act, double act_param) {
  follow_torch_threads();
  const at::Tensor weight = weight_in.has_value() ? *weight_in : at::Tensor();
  const at::Tensor bias = bias_in.has_value() ? *bias_in : at::Tensor();
  const at::Tensor rm = running_mean_in.has_value() ? *running_mean_in : at::Tensor();
  const at::Tensor rv = running_var_in.has_value() ? *running_var_in : at::Tensor();
  const bool grad = records_grad({&input, &weight, &bias});
  const int64_t N = input.size(0), C = input.size(1), S = input.numel() / std::max<int64_t>(1, N * C);
  at::Tensor y, mean, invstd;
  {
    at::NoGradGuard no_grad;
    y = output_empty(input.sizes(), input.options());
    mean = output_empty({C}, input.options());
    invstd = output_empty({C}, input.options());
  }
  dispatch_float(input, [&](auto t) {
    using T = decltype(t);
    batch_norm::forward<T>(ptr<const T>(input), ptr<T>(y), N, C, S, ptr_or_null<const T>(weight),
                           ptr_or_null<const T>(bias), ptr_or_null<T>(rm), ptr_or_null<T>(rv), training, momentum, eps,
                           ptr<T>(mean), ptr<T>(invstd));
    apply_fused_activation(ptr<T>(y), y.numel(), act, act_param);
  });
  if (grad) {
    auto node = connect<BatchNormBackward>(y, input, weight, bias);
    node->x = SavedVariable(input, false);
    if (weight.defined()) node->weight = SavedVariable(weight, false);
    node->mean = SavedVariable(mean, false);
    node->invstd = SavedVariable(invstd, false);
    node->training = training, node->has_weight = weight.defined(), node->has_bias = bias.defined();
    if (act != 0) node->y = SavedVariable(y, true);
    node->act = act, node->act_param = act_param;
  }
  return y;
}

}  // namespace
}  // namespace fastcnn::eager

FASTCNN_EAGER_OP("batch_norm",
                 "batch_norm(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, "
                 "bool training, float momentum, float eps, int act=0, float act_param=0.) -> Tensor",
                 &fastcnn::eager::batch_norm)
