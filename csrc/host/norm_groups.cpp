// fastcnn._C.norm_groups: normalisation over the rows of x[R, L] with per-element affine
// parameters (group_norm, layer_norm, instance_norm; see csrc/kernels/norm_groups.h). The passes
// over the data are the ISA kernels; the O(R) arithmetic (rstd, running statistics) is here, in double.
#include <cmath>
#include <limits>
#include <vector>

#include "common/module.h"
#include "kernels/norm_groups.h"

namespace fastcnn {
namespace {

// Forward: mean[R], rstd[R] out (kept for backward). running_mean/running_var (length G, may be 0)
// are updated in place as torch's instance_norm does: by the average over the outer index of the
// rows' mean and unbiased variance, with factor `momentum`.
void forward(int dtype, std::uintptr_t x, std::uintptr_t y, int64_t R, int64_t L, int64_t G, int64_t S,
             std::uintptr_t weight, std::uintptr_t bias, double eps, std::uintptr_t mean_out, std::uintptr_t rstd_out,
             std::uintptr_t running_mean, std::uintptr_t running_var, double momentum) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    const auto& k = pick<T>(group_norm_kernels());
    T* mean = as_ptr<T>(mean_out);
    T* rstd = as_ptr<T>(rstd_out);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> mu(R, nan), var(R, nan);
    if (R > 0 && L > 0) k.row_moments(as_ptr<const T>(x), R, L, mu.data(), var.data());
    for (int64_t r = 0; r < R; ++r) {
      mean[r] = T(mu[r]);
      rstd[r] = T(1.0 / std::sqrt(var[r] + eps));
    }
    T* rm = as_ptr<T>(running_mean);
    T* rv = as_ptr<T>(running_var);
    if (rm && rv && R > 0) {
      const int64_t outer = R / G;
      for (int64_t g = 0; g < G; ++g) {
        double sm = 0, sv = 0;
        for (int64_t o = 0; o < outer; ++o) {
          sm += mu[o * G + g];
          sv += var[o * G + g] * double(L) / double(L - 1);
        }
        rm[g] = T((1 - momentum) * double(rm[g]) + momentum * sm / double(outer));
        rv[g] = T((1 - momentum) * double(rv[g]) + momentum * sv / double(outer));
      }
    }
    if (R > 0 && L > 0)
      k.row_affine(as_ptr<const T>(x), as_ptr<T>(y), R, L, G, S, mean, rstd, as_ptr<const T>(weight),
                   as_ptr<const T>(bias));
  });
}

// Backward: any of gx, grad_weight, grad_bias may be 0 (not wanted).
void backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t gx, int64_t R, int64_t L, int64_t G,
              int64_t S, std::uintptr_t weight, std::uintptr_t mean, std::uintptr_t rstd, std::uintptr_t grad_weight,
              std::uintptr_t grad_bias) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    const auto& k = pick<T>(group_norm_kernels());
    T* gw = as_ptr<T>(grad_weight);
    T* gb = as_ptr<T>(grad_bias);
    if (R == 0 || L == 0) {  // nothing to sum: zero parameter gradients
      for (int64_t i = 0; i < G * (L / S); ++i) {
        if (gw) gw[i] = T(0);
        if (gb) gb[i] = T(0);
      }
      return;
    }
    if (gx)
      k.row_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<T>(gx), R, L, G, S, as_ptr<const T>(mean),
                     as_ptr<const T>(rstd), as_ptr<const T>(weight));
    if (gw || gb)
      k.param_grads(as_ptr<const T>(gy), as_ptr<const T>(x), R, L, G, S, as_ptr<const T>(mean),
                    as_ptr<const T>(rstd), gw, gb);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(norm_groups) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL);
  m.def("backward", &backward, FASTCNN_NOGIL);
}
