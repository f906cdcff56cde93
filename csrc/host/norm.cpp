// fastcnn._C.norm: batch norm forward/backward on x[N, C, S] (csrc/host/batch_norm_math.h), Lp
// normalisation and local response norm.
#include "common/module.h"
#include "host/batch_norm_math.h"
#include "kernels/norm.h"

namespace fastcnn {
namespace {

void batch_norm_forward(int dtype, std::uintptr_t x, std::uintptr_t y, int64_t N, int64_t C, int64_t S,
                        std::uintptr_t weight, std::uintptr_t bias, std::uintptr_t running_mean,
                        std::uintptr_t running_var, bool training, double momentum, double eps,
                        std::uintptr_t mean_out, std::uintptr_t invstd_out) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    batch_norm::forward<T>(as_ptr<const T>(x), as_ptr<T>(y), N, C, S, as_ptr<const T>(weight), as_ptr<const T>(bias),
                           as_ptr<T>(running_mean), as_ptr<T>(running_var), training, momentum, eps,
                           as_ptr<T>(mean_out), as_ptr<T>(invstd_out));
  });
}

void batch_norm_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t gx, int64_t N, int64_t C,
                         int64_t S, std::uintptr_t weight, std::uintptr_t mean_in, std::uintptr_t invstd_in,
                         bool training, std::uintptr_t grad_weight, std::uintptr_t grad_bias) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    batch_norm::backward<T>(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<T>(gx), N, C, S, as_ptr<const T>(weight),
                            as_ptr<const T>(mean_in), as_ptr<const T>(invstd_in), training, as_ptr<T>(grad_weight),
                            as_ptr<T>(grad_bias));
  });
}

void normalize_forward(int dtype, std::uintptr_t x, std::uintptr_t y, std::uintptr_t norm, int64_t outer, int64_t D,
                       int64_t inner, double p, double eps) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick_lp<T>(norm_kernels()).normalize_forward(as_ptr<const T>(x), as_ptr<T>(y), as_ptr<T>(norm), outer, D, inner, p, eps);
  });
}

void normalize_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t norm, std::uintptr_t gx,
                        int64_t outer, int64_t D, int64_t inner, double p, double eps) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick_lp<T>(norm_kernels()).normalize_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(norm),
                                                  as_ptr<T>(gx), outer, D, inner, p, eps);
  });
}

void lrn_forward(int dtype, std::uintptr_t x, std::uintptr_t y, std::uintptr_t scale, int64_t N, int64_t C, int64_t S,
                 int64_t size, double alpha, double beta, double k) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    if (N == 0 || C == 0 || S == 0) return;  // empty: nothing to write (the kernels divide by these)
    pick_lp<T>(norm_kernels()).lrn_forward(as_ptr<const T>(x), as_ptr<T>(y), as_ptr<T>(scale), N, C, S, size, alpha,
                                           beta, k);
  });
}

void lrn_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t scale, std::uintptr_t gx, int64_t N,
                  int64_t C, int64_t S, int64_t size, double alpha, double beta) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    if (N == 0 || C == 0 || S == 0) return;  // empty: nothing to write (the kernels divide by these)
    pick_lp<T>(norm_kernels()).lrn_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(scale),
                                            as_ptr<T>(gx), N, C, S, size, alpha, beta);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(norm) {
  using namespace fastcnn;
  m.def("batch_norm_forward", &batch_norm_forward, FASTCNN_NOGIL);
  m.def("batch_norm_backward", &batch_norm_backward, FASTCNN_NOGIL);
  m.def("normalize_forward", &normalize_forward, FASTCNN_NOGIL);
  m.def("normalize_backward", &normalize_backward, FASTCNN_NOGIL);
  m.def("lrn_forward", &lrn_forward, FASTCNN_NOGIL);
  m.def("lrn_backward", &lrn_backward, FASTCNN_NOGIL);
}
