// fastcnn_eager::cross_entropy: softmax cross-entropy of logits (C,), (N, C) or (N, C, d1, ...) against
// class indices, on the kernels of csrc/kernels/loss.cpp, as fastcnn/ops/loss.py's _CrossEntropy (the
// same kernel calls and float64 reductions, so the same results): reduction 0 'none', 1 'mean'
// (sum(loss) / sum of the counted targets' weights, 1 each without weight), 2 'sum'. The class indices are checked here, on
// every call, with the Python check's message (check_target_values).
#include "kernels/loss.h"
#include "torchops/eager_op.h"

namespace fastcnn::eager {
namespace {

enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2 };

template <class T>
const LossFns<T>& loss_fns() { return pick<T>(loss_kernels()); }

void check_class_indices(const at::Tensor& target, int64_t C, int64_t ignore_index) {
  const int64_t* t = ptr<const int64_t>(target);
  for (int64_t i = 0, n = target.numel(); i < n; ++i)
    TORCH_CHECK_VALUE((t[i] >= 0 && t[i] < C) || t[i] == ignore_index, "target: class indices must be in [0, ", C,
                      ") or equal ignore_index=", ignore_index, "; got ", t[i]);
}

struct CrossEntropyBackward : BackwardNode<CrossEntropyBackward> {
  static constexpr const char* kName = "fastcnn::CrossEntropyBackward";
  SavedVariable x, target, weight, lse;  // x contiguous [N, C, S]; weight undefined when absent
  int64_t N = 0, C = 0, S = 0, ignore_index = -100, reduction = kMean;
  double smoothing = 0, denom = 1;
  std::vector<int64_t> input_sizes;

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor xs = x.unpack(), t = target.unpack(), w = weight.unpack(), l = lse.unpack();
    at::Tensor gx = output_empty(xs.sizes(), xs.options());
    dispatch_float(xs, [&](auto zero) {
      using T = decltype(zero);
      at::Tensor g_all;
      T g_one{};
      const T* g = &g_one;
      int64_t g_stride = 0;
      if (reduction == kNone) {  // one factor per element, in the logits' dtype
        g_all = grad.contiguous().to(xs.scalar_type());
        g = ptr<const T>(g_all), g_stride = 1;
      } else {  // d(total)/d(loss_i) * gy, computed in float64 as the Python path does
        const double gy = grad.item().toDouble();
        g_one = T(reduction == kMean ? gy / denom : gy);
      }
      loss_fns<T>().cross_entropy_backward(ptr<const T>(xs), ptr<const int64_t>(t), ptr_or_null<const T>(w),
                                           ptr<const T>(l), N, C, S, ignore_index, smoothing, g, g_stride, ptr<T>(gx));
    });
    return {gx.view(input_sizes)};
  }

  void release_variables() override {
    x.reset_data();
    target.reset_data();
    weight.reset_data();
    lse.reset_data();
  }
};

at::Tensor cross_entropy(const at::Tensor& input, const at::Tensor& target_in, const c10::optional<at::Tensor>& weight_in,
                         int64_t ignore_index, int64_t reduction, double smoothing) {
  follow_torch_threads();
  const bool grad = records_grad({&input});
  const bool unbatched = input.dim() == 1;
  const int64_t N = unbatched ? 1 : input.size(0), C = unbatched ? input.size(0) : input.size(1);
  const int64_t S = N * C != 0 ? input.numel() / (N * C) : 0;
  at::Tensor x, t, w, loss, wt, lse;
  {
    at::NoGradGuard no_grad;
    x = input.contiguous(), t = target_in.contiguous();
    if (weight_in.has_value()) w = weight_in->contiguous();
    loss = output_empty({N * S}, x.options()), wt = output_empty({N * S}, x.options()), lse = output_empty({N * S}, x.options());
  }
  check_class_indices(t, C, ignore_index);
  at::Tensor out;
  double denom = 1;
  dispatch_float(x, [&](auto zero) {
    using T = decltype(zero);
    const auto& k = loss_fns<T>();
    k.cross_entropy_forward(ptr<const T>(x), ptr<const int64_t>(t), ptr_or_null<const T>(w), N, C, S, ignore_index, smoothing,
                            ptr<T>(loss), ptr<T>(wt), ptr<T>(lse));
    if (reduction == kNone) {
      out = loss.view(target_in.sizes());
      return;
    }
    const double total = k.sum(ptr<const T>(loss), loss.numel());
    if (reduction == kMean) denom = k.sum(ptr<const T>(wt), wt.numel());  // the counted targets' weights (1 each without weight)
    out = output_empty({}, x.options());
    *ptr<T>(out) = T(reduction == kMean ? total / denom : total);
  });
  if (grad) {
    auto node = connect<CrossEntropyBackward>(out, input);
    node->x = SavedVariable(x, false), node->target = SavedVariable(t, false), node->lse = SavedVariable(lse, false);
    if (w.defined()) node->weight = SavedVariable(w, false);
    node->N = N, node->C = C, node->S = S, node->ignore_index = ignore_index, node->reduction = reduction;
    node->smoothing = smoothing, node->denom = denom;
    node->input_sizes = input.sizes().vec();
  }
  return out;
}

}  // namespace
}  // namespace fastcnn::eager

FASTCNN_EAGER_OP("cross_entropy",
                 "cross_entropy(Tensor x, Tensor target, Tensor? weight, int ignore_index, int reduction, float smoothing) "
                 "-> Tensor",
                 &fastcnn::eager::cross_entropy)
