// fastcnn_eager::max_pool2d: max pooling of a 4-D input (NCHW or channels_last, kept) on the kernels
// of csrc/kernels/pool.cpp, as fastcnn/ops/pool.py's _MaxPool2d: the argmax indices are kept only
// for the backward, which scatters the output gradient at them (index_scatter, accumulating).
#include "kernels/pool.h"
#include "torchops/eager_op.h"

namespace fastcnn::eager {
namespace {

// fastcnn.contracts.pool.is_channels_last: NHWC in memory and not also NCHW (a 1x1 map is both).
bool is_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

template <class T>
const PoolFns<T>& pool_fns() {
  if constexpr (sizeof(T) == 4) return pool_kernels().f32; else return pool_kernels().f64;
}

at::MemoryFormat format(bool channels_last) {
  return channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

struct MaxPool2dBackward : BackwardNode<MaxPool2dBackward> {
  static constexpr const char* kName = "fastcnn::MaxPool2dBackward";
  SavedVariable indices;  // int64 [N,C,P,Q], in the input's layout
  int64_t H = 0, W = 0;
  bool input_channels_last = false;

  variable_list backward(const at::Tensor& grad) {
    const at::Tensor idx = indices.unpack();
    const bool cl = is_channels_last(idx);
    const at::Tensor gy = grad.contiguous(format(cl));
    const int64_t N = gy.size(0), C = gy.size(1);
    at::Tensor gx = output_empty({N, C, H, W}, gy.options(), format(cl));
    if (gx.numel()) {
      const pool::Geom g{N, C, H, W, gy.size(2), gy.size(3), 1, 1, 1, 1, 0, 0, 1, 1};
      dispatch_float(gy, [&](auto t) {
        using T = decltype(t);
        pool_fns<T>().index_scatter(ptr<const T>(gy), ptr<const int64_t>(idx), ptr<T>(gx), g, cl, true);
      });
    }
    // The input's layout, as torch returns it (fastcnn.contracts.pool.like_input).
    if (input_channels_last && !gx.is_contiguous(at::MemoryFormat::ChannelsLast))
      gx = gx.contiguous(at::MemoryFormat::ChannelsLast);
    return {gx};
  }

  void release_variables() override { indices.reset_data(); }
};

at::Tensor max_pool2d(const at::Tensor& input, at::IntArrayRef k, at::IntArrayRef s, at::IntArrayRef p,
                      at::IntArrayRef d, at::IntArrayRef out_hw) {
  follow_torch_threads();
  const bool grad = records_grad({&input});
  at::Tensor x, y, idx;
  bool cl;
  {
    at::NoGradGuard no_grad;  // a copy made here is not part of the graph
    x = dense(input);
    cl = is_channels_last(x);
    y = output_empty({x.size(0), x.size(1), out_hw[0], out_hw[1]}, x.options(), format(cl));
    if (grad) idx = output_empty(y.sizes(), x.options().dtype(at::kLong), format(cl));
  }
  if (y.numel()) {
    const pool::Geom g{x.size(0), x.size(1), x.size(2), x.size(3), out_hw[0], out_hw[1],
                       k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]};
    dispatch_float(x, [&](auto t) {
      using T = decltype(t);
      pool_fns<T>().max_forward(ptr<const T>(x), ptr<T>(y), grad ? ptr<int64_t>(idx) : nullptr, g, cl);
    });
  }
  if (grad) {
    auto node = connect<MaxPool2dBackward>(y, input);
    node->indices = SavedVariable(idx, false);
    node->H = x.size(2), node->W = x.size(3), node->input_channels_last = cl;
  }
  return y;
}

}  // namespace
}  // namespace fastcnn::eager

FASTCNN_EAGER_OP("max_pool2d", "max_pool2d(Tensor x, int[] kernel, int[] stride, int[] padding, int[] dilation, int[] out_hw) -> Tensor", &fastcnn::eager::max_pool2d)
