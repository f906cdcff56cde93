// fastcnn_eager::conv2d: conv2d, and with `transposed` conv_transpose2d (its adjoint), on the
// convolution kernels through csrc/host/conv_calls.h, the calls the pybind bindings make: the same
// results as fastcnn/ops/conv.py's _Conv2d / _ConvTranspose2d Functions.
//
// fastcnn/ops/conv.py decides everything per configuration and sends it as `plan`, one int64 tensor
// made once per configuration (an int[] argument costs ~0.1 us per element to convert, a tensor
// nothing), of kPlanSize entries:
//   [0, 16)   the ConvShape's sizes (for transposed: the convolution it is the adjoint of);
//   [16, 19)  the algorithm code (conv_calls::Algo) of each conv2d pass: forward, backward-input,
//             backward-weight;
//   [19, 22)  each pass's fallback (-1: none): a pass with a fallback is run again with it when its
//             result holds a non-finite value (conv.py _pass's rule for the tile transforms, whose
//             one NaN/inf spreads over a whole tile);
//   22        the fused activation's code (fastcnn::Act; 0 for transposed), its parameter: act_param;
//   23        transposed: conv_transpose2d (1) or conv2d (0).
// Only non-degenerate calls come here (every size > 0: the kernel wrappers' special cases stay in
// Python), with contiguous x, w and bias.
#include <cmath>
#include <stdexcept>

#include "host/conv_calls.h"
#include "torchops/eager_op.h"
#include "torchops/fused_activation.h"

namespace fastcnn::eager {
namespace {

enum Pass { kForward = 0, kBackwardInput = 1, kBackwardWeight = 2 };

constexpr int64_t kPlanSize = 24;

struct Plan {
  ConvShape shape{};
  int64_t algo[3] = {0, 0, 0};
  int64_t fallback[3] = {-1, -1, -1};
  int64_t act = 0;
  bool transposed = false;
};

Plan plan_of(const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.device().is_cpu() && t.scalar_type() == at::kLong && t.dim() == 1 && t.numel() == kPlanSize &&
                        t.is_contiguous(),
                    "plan: expected a contiguous CPU int64 tensor of ", kPlanSize, " entries, got ", t.scalar_type(),
                    " of shape ", t.sizes());
  const int64_t* v = t.const_data_ptr<int64_t>();
  Plan p;
  try {
    p.shape = conv_shape_from_list(std::vector<int64_t>(v, v + 16));
    for (int i = 0; i < 3; ++i) {
      conv_calls::algo_of(v[16 + i]);
      if (v[19 + i] >= 0) conv_calls::algo_of(v[19 + i]);
      p.algo[i] = v[16 + i], p.fallback[i] = v[19 + i];
    }
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, "plan: ", e.what());
  }
  p.act = v[22], p.transposed = v[23] != 0;
  TORCH_CHECK_VALUE(!p.transposed || p.act == 0, "plan: conv_transpose2d fuses no activation");
  return p;
}

// The raw entries index memory by the shape: refuse tensors that do not match it.
void expect(const at::Tensor& t, at::IntArrayRef sizes, const char* name) {
  TORCH_CHECK_VALUE(t.sizes() == sizes && t.is_contiguous(), name, ": expected a contiguous tensor of shape ", sizes,
                    " for this convolution, got ", t.sizes());
}

template <class T>
bool all_finite(const at::Tensor& t) {
  const T* p = ptr<const T>(t);
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// Runs pass `which` into `out` by run(algo): with its algorithm, then with its fallback where the plan
// has one and `out` holds a non-finite value. The kernels' std::invalid_argument (a shape an
// algorithm cannot run) reaches Python as ValueError, as from the pybind bindings.
template <class T, class Run>
void run_pass(const Plan& p, Pass which, const at::Tensor& out, Run&& run) {
  try {
    run(conv_calls::algo_of(p.algo[which]));
    if (p.fallback[which] >= 0 && !all_finite<T>(out)) run(conv_calls::algo_of(p.fallback[which]));
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

// The three passes of the convolution p.shape: y[N,K,P,Q] from x[N,C,H,W] and w[K,C/G,R,S], and back.
template <class T>
void conv_forward(const Plan& p, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& y,
                  int act, double act_param) {
  run_pass<T>(p, kForward, y, [&](conv_calls::Algo a) {
    conv_calls::forward(a, p.shape, ptr<const T>(x), ptr<const T>(w), ptr_or_null<const T>(b), ptr<T>(y), act,
                        act_param);
  });
}

template <class T>
void conv_backward_input(const Plan& p, const at::Tensor& gy, const at::Tensor& w, const at::Tensor& gx) {
  run_pass<T>(p, kBackwardInput, gx, [&](conv_calls::Algo a) {
    conv_calls::backward_input(a, p.shape, ptr<const T>(gy), ptr<const T>(w), ptr<T>(gx));
  });
}

template <class T>
void conv_backward_weight(const Plan& p, const at::Tensor& x, const at::Tensor& gy, const at::Tensor& gw) {
  run_pass<T>(p, kBackwardWeight, gw, [&](conv_calls::Algo a) {
    conv_calls::backward_weight(a, p.shape, ptr<const T>(x), ptr<const T>(gy), ptr<T>(gw));
  });
}

// The bias gradient: per-channel sums of gy[N, K, ...] (the kernel adds into zeros, as channel_sum's wrapper).
template <class T>
at::Tensor channel_sum(const at::Tensor& gy) {
  const int64_t N = gy.size(0), K = gy.size(1);
  at::Tensor out = at::zeros({K}, gy.options());
  conv_im2col_kernels().get<T>().channel_sum(ptr<const T>(gy), ptr<T>(out), N, K, gy.numel() / (N * K));
  return out;
}

struct ConvBackward : BackwardNode<ConvBackward> {
  static constexpr const char* kName = "fastcnn::Conv2dBackward";

  SavedVariable x, w, y;  // the op's input and weight (contiguous); y: its output, only with an activation
  Plan plan;
  double act_param = 0;
  bool has_bias = false;
  std::string name() const override { return plan.transposed ? "fastcnn::ConvTranspose2dBackward" : kName; }

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor xs = x.unpack(), ws = w.unpack();
    const bool transposed = plan.transposed;
    const int64_t act = plan.act;
    at::Tensor gy = grad.contiguous(), gx, gw, gb;
    // through the fused activation, from the output (as _Conv2d.backward)
    if (act != 0) gy = through_fused_activation(gy, y.unpack(getptr()), act, act_param);
    dispatch_float(xs, [&](auto t) {
      using T = decltype(t);
      if (should_compute_output(0)) {
        gx = output_empty(xs.sizes(), xs.options());
        if (transposed)  // the adjoint's input gradient is the forward convolution of gy
          conv_forward<T>(plan, gy, ws, at::Tensor(), gx, 0, 0.0);
        else
          conv_backward_input<T>(plan, gy, ws, gx);
      }
      if (should_compute_output(1)) {
        gw = output_empty(ws.sizes(), ws.options());
        if (transposed)  // the forward convolution's weight gradient with input := gy, grad := x
          conv_backward_weight<T>(plan, gy, xs, gw);
        else
          conv_backward_weight<T>(plan, xs, gy, gw);
      }
      if (has_bias && should_compute_output(2)) gb = channel_sum<T>(gy);
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

at::Tensor conv2d(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias_in,
                  const at::Tensor& plan_in, double act_param) {
  follow_torch_threads();
  const at::Tensor bias = bias_in.has_value() ? *bias_in : at::Tensor();
  const bool grad = records_grad({&input, &weight, &bias});
  const Plan plan = plan_of(plan_in);
  const ConvShape& s = plan.shape;
  const bool transposed = plan.transposed;
  // conv2d: x[N,C,H,W] -> y[N,K,P,Q]; transposed: x[N,K,P,Q] -> y[N,C,H,W]
  const int64_t sizes[2][4] = {{s.N, s.C, s.H, s.W}, {s.N, s.K, s.P, s.Q}};
  expect(input, sizes[transposed], "input");
  expect(weight, {s.K, s.C / s.G, s.R, s.S}, "weight");
  if (bias.defined()) expect(bias, {transposed ? s.C : s.K}, "bias");
  at::Tensor y;
  {
    at::NoGradGuard no_grad;
    y = output_empty(sizes[!transposed], input.options());
  }
  dispatch_float(input, [&](auto t) {
    using T = decltype(t);
    if (!transposed) {
      conv_forward<T>(plan, input, weight, bias, y, static_cast<int>(plan.act), act_param);
      return;
    }
    conv_backward_input<T>(plan, input, weight, y);
    if (bias.defined())  // the bias epilogue alone (channel_bias_act)
      conv_im2col_kernels().get<T>().bias_act(ptr<T>(y), ptr<const T>(bias), s.N, s.C, s.H * s.W, 0, T(0), T(0));
  });
  if (grad) {
    auto node = bias.defined() ? connect<ConvBackward>(y, input, weight, bias) : connect<ConvBackward>(y, input, weight);
    node->x = SavedVariable(input, false);
    node->w = SavedVariable(weight, false);
    if (plan.act != 0) node->y = SavedVariable(y, true);
    node->plan = plan, node->act_param = act_param, node->has_bias = bias.defined();
  }
  return y;
}

}  // namespace
}  // namespace fastcnn::eager

FASTCNN_EAGER_OP("conv2d",
                 "conv2d(Tensor x, Tensor w, Tensor? b, Tensor plan, float act_param) -> Tensor",
                 &fastcnn::eager::conv2d)
