// fastcnn_eager::activation: the element-wise activations (kind = a fastcnn::Act code) out of place,
// on the kernels of csrc/kernels/activation.cpp; fastcnn/ops/activation.py decides kind, parameters
// and whether the backward reads the output (from_output) exactly as for its Python Function.
#include "kernels/activation.h"
#include "torchops/eager_op.h"

namespace fastcnn::eager {
namespace {

struct ActivationBackward : BackwardNode<ActivationBackward> {
  static constexpr const char* kName = "fastcnn::ActivationBackward";
  SavedVariable saved;  // the output (from_output) or the input
  int64_t kind = 0;
  double p0 = 0, p1 = 0;
  bool from_output = false;

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor s = from_output ? saved.unpack(getptr()) : saved.unpack();
    const at::Tensor gy = laid_out_like(grad, s);
    at::Tensor gx = empty_as(s);
    dispatch_float(s, [&](auto t) {
      using T = decltype(t);
      activation_kernels().get<T>().backward(static_cast<Act>(kind), ptr<const T>(gy), ptr<const T>(s), ptr<T>(gx),
                                             s.numel(), from_output, T(p0), T(p1));
    });
    return {gx};
  }

  void release_variables() override { saved.reset_data(); }
};

at::Tensor activation(const at::Tensor& input, int64_t kind, double p0, double p1, bool from_output) {
  follow_torch_threads();
  const bool grad = records_grad({&input});
  at::Tensor x, y;
  {
    at::NoGradGuard no_grad;  // a copy made here is not part of the graph
    x = dense(input);
    y = empty_as(x);
  }
  dispatch_float(x, [&](auto t) {
    using T = decltype(t);
    activation_kernels().get<T>().forward(static_cast<Act>(kind), ptr<const T>(x), ptr<T>(y), x.numel(), T(p0),
                                          T(p1));
  });
  if (grad) {
    auto node = connect<ActivationBackward>(y, input);
    node->saved = from_output ? SavedVariable(y, true) : SavedVariable(x, false);
    node->kind = kind, node->p0 = p0, node->p1 = p1, node->from_output = from_output;
  }
  return y;
}

}  // namespace
}  // namespace fastcnn::eager

FASTCNN_EAGER_OP("activation", "activation(Tensor x, int kind, float p0, float p1, bool from_output) -> Tensor", &fastcnn::eager::activation)
