// Activation kernels, compiled once per ISA (see setup.py). Memory-bound: one streaming pass, the
// activation kind fixed per loop (a compile-time constant) so the body is straight-line SIMD.
#include "kernels/activation.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

using simd::Vec;
constexpr int64_t kGrain = 1 << 14;  // elements per thread chunk, at least: amortises the fork

// Calls body(std::integral_constant<Act, kind>) so `kind` is a constant inside the loops.
template <class Body>
void with_kind(Act kind, Body&& body) {
  switch (kind) {
    case Act::relu: return body(std::integral_constant<Act, Act::relu>{});
    case Act::leaky_relu: return body(std::integral_constant<Act, Act::leaky_relu>{});
    case Act::elu: return body(std::integral_constant<Act, Act::elu>{});
    case Act::sigmoid: return body(std::integral_constant<Act, Act::sigmoid>{});
    case Act::tanh: return body(std::integral_constant<Act, Act::tanh>{});
    case Act::softplus: return body(std::integral_constant<Act, Act::softplus>{});
    case Act::step: return body(std::integral_constant<Act, Act::step>{});
    case Act::silu: return body(std::integral_constant<Act, Act::silu>{});
    case Act::gelu: return body(std::integral_constant<Act, Act::gelu>{});
    case Act::gelu_tanh: return body(std::integral_constant<Act, Act::gelu_tanh>{});
    case Act::hardswish: return body(std::integral_constant<Act, Act::hardswish>{});
    case Act::hardsigmoid: return body(std::integral_constant<Act, Act::hardsigmoid>{});
    default: return body(std::integral_constant<Act, Act::identity>{});
  }
}

// Outputs this large are written with non-temporal stores when they do not alias an input: they
// would not stay in cache anyway, and streaming them skips the read-for-ownership of every line.
constexpr int64_t kStreamBytes = int64_t{16} << 20;

template <class T>
inline Vec<T> load_n(const T* p, int r) { return r == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load(p, r); }

// out[i] = f(i, r) for i in [b, e), in vectors of r valid lanes.
template <class T, class F>
void map_range(T* out, int64_t b, int64_t e, bool nontemporal, F&& f) {
  using V = Vec<T>;
  int64_t i = b;
  if (nontemporal) {
    const auto misalign = reinterpret_cast<std::uintptr_t>(out + i) % sizeof(V);
    if (misalign && misalign % sizeof(T) == 0) {
      const int head = int(std::min<int64_t>(e - i, int64_t((sizeof(V) - misalign) / sizeof(T))));
      f(i, head).store(out + i, head);
      i += head;
    }
    if (reinterpret_cast<std::uintptr_t>(out + i) % sizeof(V) == 0)
      for (; i + V::N <= e; i += V::N) f(i, V::N).stream(out + i);
  }
  for (; i + V::N <= e; i += V::N) f(i, V::N).store(out + i);
  if (i < e) f(i, int(e - i)).store(out + i, int(e - i));
  if (nontemporal) simd::stream_fence();
}

template <class T>
void forward(Act kind, const T* x, T* y, int64_t n, T p0, T p1) {
  const bool nontemporal = x != y && n * int64_t(sizeof(T)) >= kStreamBytes;
  with_kind(kind, [&](auto K) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      map_range(y, b, e, nontemporal, [&](int64_t i, int r) { return act::forward<T>(K, load_n(x + i, r), p0, p1); });
    });
  });
}

template <class T>
void backward(Act kind, const T* gy, const T* s, T* gx, int64_t n, bool from_output, T p0, T p1) {
  const bool nontemporal = gx != gy && gx != s && n * int64_t(sizeof(T)) >= kStreamBytes;
  with_kind(kind, [&](auto K) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      map_range(gx, b, e, nontemporal, [&](int64_t i, int r) {
        return act::backward<T>(K, load_n(gy + i, r), load_n(s + i, r), from_output, p0, p1);
      });
    });
  });
}

template <class T>
void prelu_forward(const T* x, const T* w, T* y, int64_t outer, int64_t C, int64_t inner, int64_t nw) {
  using V = Vec<T>;
  parallel_for(outer * C, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const V slope = V::set1(w[nw == 1 ? 0 : row % C]);
      const T* xr = x + row * inner;
      T* yr = y + row * inner;
      int64_t i = 0;
      for (; i + V::N <= inner; i += V::N) {
        V v = V::load(xr + i);
        select(v > V::zero(), v, v * slope).store(yr + i);
      }
      if (i < inner) {
        V v = V::load(xr + i, int(inner - i));
        select(v > V::zero(), v, v * slope).store(yr + i, int(inner - i));
      }
    }
  });
}

template <class T>
void prelu_backward(const T* gy, const T* x, const T* w, T* gx, T* gw, int64_t outer, int64_t C, int64_t inner,
                    int64_t nw) {
  using V = Vec<T>;
  // Channels are split between threads (no shared accumulators); each thread walks all batches of
  // its channels. With a single shared slope, rows are split and partial sums combined.
  const int64_t rows = nw == 1 ? outer * C : C;
  const int nt = num_threads();
  std::vector<double> partial(static_cast<size_t>(nw == 1 ? nt : 0), 0.0);
  auto row_pass = [&](const T* gyr, const T* xr, T* gxr, T slope_value) {
    const V slope = V::set1(slope_value);
    V acc = V::zero();
    int64_t i = 0;
    for (; i + V::N <= inner; i += V::N) {
      V v = V::load(xr + i), g = V::load(gyr + i);
      auto pos = v > V::zero();
      select(pos, g, g * slope).store(gxr + i);
      acc = acc + select(pos, V::zero(), v * g);
    }
    if (i < inner) {
      const int r = int(inner - i);
      V v = V::load(xr + i, r), g = V::load(gyr + i, r);
      auto pos = v > V::zero();
      select(pos, g, g * slope).store(gxr + i, r);
      acc = acc + select(pos, V::zero(), v * g);
    }
    return static_cast<double>(reduce_add(acc));
  };
  parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    if (nw == 1) {
      double s = 0;
      for (int64_t row = b; row < e; ++row)
        s += row_pass(gy + row * inner, x + row * inner, gx + row * inner, w[0]);
      partial[static_cast<size_t>(omp_get_thread_num())] += s;
      return;
    }
    for (int64_t c = b; c < e; ++c) {
      double s = 0;
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t off = (o * C + c) * inner;
        s += row_pass(gy + off, x + off, gx + off, w[c]);
      }
      gw[c] = static_cast<T>(s);
    }
  });
  if (nw == 1) {
    double s = 0;
    for (double p : partial) s += p;
    gw[0] = static_cast<T>(s);
  }
}

template <class T>
void maxout_forward(const T* x, T* y, int64_t outer, int64_t cout, int64_t k, int64_t inner) {
  using V = Vec<T>;
  parallel_for(outer * cout, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner * k)), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const T* xr = x + row * k * inner;  // rows (o, j) are contiguous groups of k input rows
      T* yr = y + row * inner;
      for (int64_t i = 0; i < inner; i += V::N) {
        const int r = int(std::min<int64_t>(V::N, inner - i));
        V m = V::load(xr + i, r);
        for (int64_t p = 1; p < k; ++p) {
          V v = V::load(xr + p * inner + i, r);
          // v > m, or v is NaN (v != v) and m is not yet NaN: NaN propagates like torch.
          m = select(v > m, v, select(v == v, m, v));
        }
        m.store(yr + i, r);
      }
    }
  });
}

template <class T>
void maxout_backward(const T* gy, const T* x, T* gx, int64_t outer, int64_t cout, int64_t k, int64_t inner) {
  using V = Vec<T>;
  parallel_for(outer * cout, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner * k)), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const T* xr = x + row * k * inner;
      T* gxr = gx + row * k * inner;
      const T* gyr = gy + row * inner;
      for (int64_t i = 0; i < inner; i += V::N) {
        const int r = int(std::min<int64_t>(V::N, inner - i));
        // Recompute the forward's choice (first maximum, NaN first) and send gy there.
        V m = V::load(xr + i, r);
        V arg = V::zero();
        for (int64_t p = 1; p < k; ++p) {
          V v = V::load(xr + p * inner + i, r);
          auto take = v > m;
          V nan_new = select(v == v, V::zero(), V::set1(T(1)));
          V nan_old = select(m == m, V::zero(), V::set1(T(1)));
          // take v if greater, or if v is NaN while m is not
          auto take_nan = (nan_new - nan_old) > V::zero();
          m = select(take, v, select(take_nan, v, m));
          arg = select(take, V::set1(T(p)), select(take_nan, V::set1(T(p)), arg));
        }
        const V g = V::load(gyr + i, r);
        for (int64_t p = 0; p < k; ++p)
          select(arg == V::set1(T(p)), g, V::zero()).store(gxr + p * inner + i, r);
      }
    }
  });
}

template <class T>
ActivationTable<T> make_table() {
  return {&forward<T>, &backward<T>, &prelu_forward<T>, &prelu_backward<T>, &maxout_forward<T>, &maxout_backward<T>};
}

}  // namespace

const ActivationKernels& activation_kernels() {
  static const ActivationKernels table{make_table<float>(), make_table<double>()};
  return table;
}

FASTCNN_ISA_NAMESPACE_END
