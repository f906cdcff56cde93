// fastcnn._C.spectral_norm: torch.nn.utils.spectral_norm's weight, W / sigma, in one call, and its
// gradient in one more (fastcnn/ops/spectral_norm.py). A training step used to spend ~16 small op
// calls per normalised layer on the power iteration, sigma and the division (160 us on a tiny
// weight); the work itself is three passes over W.
//
// The weight is seen as w[A, M, B], M its normalised dim (A = 1 for dim 0): the matrix of the
// iteration is Mat[m, a*B + b] = w[a, m, b], u has M entries, v has N = A*B. Products, norms and sigma
// accumulate in double; u and v are rounded to T when stored, as torch keeps them in the weight's
// dtype. One pass over W per product, parallel over rows, so a canonical-size weight (512 x 8192)
// takes three reads and a write.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/module.h"
#include "common/threads.h"

namespace fastcnn {
namespace {

constexpr int64_t kGrainElems = 1 << 15;  // below this many weights per thread one thread does it

// t[n] = sum_m Mat[m, n] u[m] (Mat^T u), each thread accumulating its own rows into a private vector.
template <class T>
void transposed_product(const T* w, const T* u, int64_t A, int64_t M, int64_t B, std::vector<double>& t) {
  const int64_t N = A * B;
  std::fill(t.begin(), t.end(), 0.0);
  const int64_t rows = A * M;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows * B / kGrainElems));
  std::vector<std::vector<double>> partial(chunks - 1, std::vector<double>(N, 0.0));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double* acc = c == 0 ? t.data() : partial[c - 1].data();
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r) {
        const int64_t a = r / M, m = r % M;
        const double um = u[m];
        const T* row = w + r * B;
        double* out = acc + a * B;
        for (int64_t b = 0; b < B; ++b) out[b] += double(row[b]) * um;
      }
    }
  });
  for (const auto& p : partial)
    for (int64_t n = 0; n < N; ++n) t[n] += p[n];
}

// sum_i a[i] b[i] in double, in kLanes independent partial sums: a single running sum is one
// dependent add per element (the compiler may not reorder it), several let it vectorise.
constexpr int kLanes = 8;

template <class T>
double dot(const T* a, const T* b, int64_t n) {
  double part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += double(a[i + l]) * double(b[i + l]);
  double acc = 0.0;
  for (; i < n; ++i) acc += double(a[i]) * double(b[i]);
  for (int l = 0; l < kLanes; ++l) acc += part[l];
  return acc;
}

// s[m] = sum_n Mat[m, n] v[n] (Mat v).
template <class T>
void product(const T* w, const T* v, int64_t A, int64_t M, int64_t B, std::vector<double>& s) {
  parallel_for(M, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, A * B)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      double acc = 0.0;
      for (int64_t a = 0; a < A; ++a) acc += dot(w + (a * M + m) * B, v + a * B, B);
      s[m] = acc;
    }
  });
}

// out = x / max(||x||_2, eps), rounded to T (F.normalize(x, dim=0, eps=eps)).
template <class T>
void normalise_into(const std::vector<double>& x, double eps, T* out) {
  double ss = 0.0;
  for (double value : x) ss += value * value;
  const double d = std::max(std::sqrt(ss), eps);
  for (size_t i = 0; i < x.size(); ++i) out[i] = T(x[i] / d);
}

// y = w / sigma; u_out, v_out = u, v after `iterations` power iterations (copies when 0), written
// back to u and v as well (the module's buffers); *sigma = u_out . (Mat v_out).
template <class T>
void forward(const T* w, T* y, T* u, T* v, T* u_out, T* v_out, double* sigma, int64_t A, int64_t M, int64_t B,
             int64_t iterations, double eps) {
  const int64_t N = A * B;
  std::copy(u, u + M, u_out);
  std::copy(v, v + N, v_out);
  std::vector<double> t(N), s(M);
  for (int64_t it = 0; it < iterations; ++it) {
    transposed_product(w, u_out, A, M, B, t);
    normalise_into(t, eps, v_out);
    product(w, v_out, A, M, B, s);
    normalise_into(s, eps, u_out);
  }
  if (iterations == 0) {
    product(w, v_out, A, M, B, s);
  } else {  // s = Mat v_out from the last iteration
    std::copy(u_out, u_out + M, u);
    std::copy(v_out, v_out + N, v);
  }
  double u_dot_s = 0.0;
  for (int64_t m = 0; m < M; ++m) u_dot_s += double(u_out[m]) * s[m];
  *sigma = u_dot_s;
  const T divisor = T(u_dot_s);  // torch divides by sigma in the weight's dtype
  const int64_t total = A * M * B;
  parallel_for(total, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = w[i] / divisor;
  });
}

// sigma = u^T W v with u, v held constant: dL/dW = (gy - <gy, y> u v^T) / sigma.
template <class T>
void backward(const T* gy, const T* y, const T* u, const T* v, const double* sigma, T* gw, int64_t A, int64_t M,
              int64_t B) {
  const int64_t total = A * M * B;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), total / kGrainElems));
  std::vector<double> partial(chunks, 0.0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i0 = total * c / chunks;
      partial[c] = dot(gy + i0, y + i0, total * (c + 1) / chunks - i0);
    }
  });
  double inner = 0.0;
  for (double p : partial) inner += p;
  const double scale = 1.0 / *sigma;
  parallel_for(A * M, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, B)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t a = r / M, m = r % M;
      const double coef = inner * double(u[m]);
      const T* g = gy + r * B;
      const T* va = v + a * B;
      T* out = gw + r * B;
      for (int64_t b = 0; b < B; ++b) out[b] = T((double(g[b]) - coef * double(va[b])) * scale);
    }
  });
}

void spectral_norm_forward(int dtype, std::uintptr_t w, std::uintptr_t y, std::uintptr_t u, std::uintptr_t v,
                           std::uintptr_t u_out, std::uintptr_t v_out, std::uintptr_t sigma, int64_t A, int64_t M,
                           int64_t B, int64_t iterations, double eps) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    forward<T>(as_ptr<const T>(w), as_ptr<T>(y), as_ptr<T>(u), as_ptr<T>(v), as_ptr<T>(u_out),
               as_ptr<T>(v_out), as_ptr<double>(sigma), A, M, B, iterations, eps);
  });
}

void spectral_norm_backward(int dtype, std::uintptr_t gy, std::uintptr_t y, std::uintptr_t u, std::uintptr_t v,
                            std::uintptr_t sigma, std::uintptr_t gw, int64_t A, int64_t M, int64_t B) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    backward<T>(as_ptr<const T>(gy), as_ptr<const T>(y), as_ptr<const T>(u), as_ptr<const T>(v),
                as_ptr<const double>(sigma), as_ptr<T>(gw), A, M, B);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(spectral_norm) {
  using namespace fastcnn;
  m.def("forward", &spectral_norm_forward, FASTCNN_NOGIL);
  m.def("backward", &spectral_norm_backward, FASTCNN_NOGIL);
}
