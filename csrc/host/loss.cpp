// fastcnn._C.loss: class-index losses (softmax cross-entropy) on logits x[N, C, S], target[N, S].
#include "common/module.h"
#include "kernels/loss.h"

namespace fastcnn {
namespace {

void cross_entropy_forward(int dtype, std::uintptr_t x, std::uintptr_t target, std::uintptr_t weight, int64_t N,
                           int64_t C, int64_t S, int64_t ignore_index, double smoothing, std::uintptr_t loss,
                           std::uintptr_t wt, std::uintptr_t lse) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).cross_entropy_forward(as_ptr<const T>(x), as_ptr<const int64_t>(target),
                                                  as_ptr<const T>(weight), N, C, S, ignore_index, smoothing,
                                                  as_ptr<T>(loss), as_ptr<T>(wt), as_ptr<T>(lse));
  });
}

void cross_entropy_backward(int dtype, std::uintptr_t x, std::uintptr_t target, std::uintptr_t weight,
                            std::uintptr_t lse, int64_t N, int64_t C, int64_t S, int64_t ignore_index,
                            double smoothing, std::uintptr_t g, int64_t g_stride, std::uintptr_t gx) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).cross_entropy_backward(as_ptr<const T>(x), as_ptr<const int64_t>(target),
                                                   as_ptr<const T>(weight), as_ptr<const T>(lse), N, C, S,
                                                   ignore_index, smoothing, as_ptr<const T>(g), g_stride,
                                                   as_ptr<T>(gx));
  });
}

void soft_cross_entropy_forward(int dtype, std::uintptr_t x, std::uintptr_t target, std::uintptr_t weight, int64_t N,
                                int64_t C, int64_t S, double smoothing, std::uintptr_t loss, std::uintptr_t lse) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).soft_cross_entropy_forward(as_ptr<const T>(x), as_ptr<const T>(target),
                                                       as_ptr<const T>(weight), N, C, S, smoothing, as_ptr<T>(loss),
                                                       as_ptr<T>(lse));
  });
}

void soft_cross_entropy_backward(int dtype, std::uintptr_t x, std::uintptr_t target, std::uintptr_t weight,
                                 std::uintptr_t lse, int64_t N, int64_t C, int64_t S, double smoothing, std::uintptr_t g,
                                 int64_t g_stride, std::uintptr_t gx, std::uintptr_t gt) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).soft_cross_entropy_backward(as_ptr<const T>(x), as_ptr<const T>(target),
                                                        as_ptr<const T>(weight), as_ptr<const T>(lse), N, C, S,
                                                        smoothing, as_ptr<const T>(g), g_stride, as_ptr<T>(gx),
                                                        as_ptr<T>(gt));
  });
}

void nll_loss_forward(int dtype, std::uintptr_t x, std::uintptr_t target, std::uintptr_t weight, int64_t N, int64_t C,
                      int64_t S, int64_t ignore_index, std::uintptr_t out, std::uintptr_t wt) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).nll_forward(as_ptr<const T>(x), as_ptr<const int64_t>(target), as_ptr<const T>(weight), N,
                                        C, S, ignore_index, as_ptr<T>(out), as_ptr<T>(wt));
  });
}

void nll_loss_backward(int dtype, std::uintptr_t target, std::uintptr_t weight, int64_t N, int64_t C, int64_t S,
                       int64_t ignore_index, std::uintptr_t g, int64_t g_stride, std::uintptr_t gx) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).nll_backward(as_ptr<const int64_t>(target), as_ptr<const T>(weight), N, C, S,
                                         ignore_index, as_ptr<const T>(g), g_stride, as_ptr<T>(gx));
  });
}

void pointwise_loss_forward(int dtype, int kind, std::uintptr_t x, std::uintptr_t y, std::uintptr_t w,
                            std::uintptr_t pw, int64_t n, std::uintptr_t out) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).pointwise_forward(kind, as_ptr<const T>(x), as_ptr<const T>(y), as_ptr<const T>(w),
                                              as_ptr<const T>(pw), n, as_ptr<T>(out));
  });
}

void pointwise_loss_backward(int dtype, int kind, std::uintptr_t x, std::uintptr_t y, std::uintptr_t w,
                             std::uintptr_t pw, std::uintptr_t g, int64_t g_stride, int64_t n, std::uintptr_t gx) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(loss_kernels()).pointwise_backward(kind, as_ptr<const T>(x), as_ptr<const T>(y), as_ptr<const T>(w),
                                               as_ptr<const T>(pw), as_ptr<const T>(g), g_stride, n, as_ptr<T>(gx));
  });
}

double pointwise_loss_sum(int dtype, int kind, std::uintptr_t x, std::uintptr_t y, std::uintptr_t w, std::uintptr_t pw,
                          int64_t n) {
  return dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    return pick<T>(loss_kernels()).pointwise_sum(kind, as_ptr<const T>(x), as_ptr<const T>(y), as_ptr<const T>(w),
                                                 as_ptr<const T>(pw), n);
  });
}

double loss_sum(int dtype, std::uintptr_t v, int64_t n) {
  return dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    return pick<T>(loss_kernels()).sum(as_ptr<const T>(v), n);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(loss) {
  using namespace fastcnn;
  m.def("cross_entropy_forward", &cross_entropy_forward, FASTCNN_NOGIL);
  m.def("cross_entropy_backward", &cross_entropy_backward, FASTCNN_NOGIL);
  m.def("soft_cross_entropy_forward", &soft_cross_entropy_forward, FASTCNN_NOGIL);
  m.def("soft_cross_entropy_backward", &soft_cross_entropy_backward, FASTCNN_NOGIL);
  m.def("nll_loss_forward", &nll_loss_forward, FASTCNN_NOGIL);
  m.def("nll_loss_backward", &nll_loss_backward, FASTCNN_NOGIL);
  m.def("pointwise_loss_forward", &pointwise_loss_forward, FASTCNN_NOGIL);
  m.def("pointwise_loss_backward", &pointwise_loss_backward, FASTCNN_NOGIL);
  m.def("pointwise_loss_sum", &pointwise_loss_sum, FASTCNN_NOGIL);
  m.def("sum", &loss_sum, FASTCNN_NOGIL);
}
