// The eager op layer of the cpu backend: fastcnn ops registered with torch's dispatcher (namespace
// fastcnn_eager), whose forward and backward call the kernel tables of csrc/kernels/ directly. A
// public op reaches one through a single dispatcher call (fastcnn/ops/_eager.py), where the Python
// path pays frames for its autograd.Function, the kernel wrapper and a Python backward node.
//
// One idiom for every op (activation.cpp is the smallest example):
//   - a forward that computes into outputs from output_empty / empty_as (output_pool.h) with the kernels;
//   - when a gradient will be taken (records_grad), a BackwardNode<Derived> (a plain autograd Node,
//     as torch's own ops have: torch::autograd::Function's per-call bookkeeping costs microseconds)
//     connected to the inputs and the output by connect(), holding SavedVariables;
//   - its backward(gy) returning one gradient per connected input (undefined where not needed:
//     should_compute_output(i)); results refuse a second derivative, like the Python Functions'.
//   - FASTCNN_EAGER_OP(name, schema, function) to register it (below).
//
// Only files under csrc/torchops/ include torch headers (never pybind11: torch bundles its own).
// Argument checks stay in Python (fastcnn/ops/): these ops run once a configuration has passed them.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/library.h>

#include <initializer_list>
#include <string>

#include "common/threads.h"
#include "torchops/output_pool.h"

namespace fastcnn::eager {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// Calls body(T{}) with T = float or double for t's dtype.
template <class Body>
decltype(auto) dispatch_float(const at::Tensor& t, Body&& body) {
  switch (t.scalar_type()) {
    case at::kFloat: return body(float{});
    case at::kDouble: return body(double{});
    default: TORCH_CHECK_TYPE(false, "fastcnn cpu kernels take float32 or float64, got ", t.scalar_type());
  }
}

// The kernels' thread count follows torch's, as the Python kernel wrappers do (backends/cpu/_lib.py).
inline void follow_torch_threads() {
  const int n = at::get_num_threads();
  if (n != num_threads()) set_num_threads(n);
}

// t itself if its storage is dense (contiguous or channels_last), else a contiguous copy.
inline at::Tensor dense(const at::Tensor& t) {
  if (t.is_contiguous() || t.is_contiguous(at::MemoryFormat::ChannelsLast)) return t;
  return t.contiguous();
}

// An uninitialised output with exactly t's sizes and strides (element-wise kernels walk both
// storages in the same order), from the output pool.
inline at::Tensor empty_as(const at::Tensor& t) { return output_empty_as(t); }

// t with ref's strides (a copy only where they differ).
inline at::Tensor laid_out_like(const at::Tensor& t, const at::Tensor& ref) {
  if (t.strides() == ref.strides()) return t;
  return empty_as(ref).copy_(t);
}

template <class T>
T* ptr(const at::Tensor& t) { return static_cast<T*>(t.data_ptr()); }

// An optional tensor's data, nullptr where it is absent (the kernels' "not given").
template <class T>
T* ptr_or_null(const at::Tensor& t) { return t.defined() ? ptr<T>(t) : nullptr; }

// Whether this call builds a backward node: grad mode on and an input requiring a gradient. Inputs
// carrying a forward-mode tangent are refused, as the Python Functions (which have no jvp) refuse them.
inline bool records_grad(std::initializer_list<const at::Tensor*> inputs) {
  bool any = false;
  for (const at::Tensor* t : inputs) {
    if (!t->defined()) continue;
    TORCH_CHECK_NOT_IMPLEMENTED(!t->_fw_grad(/*level=*/0).defined(),
                                "fastcnn ops have no forward-mode derivative (jvp); use backend='reference'");
    any = any || t->requires_grad();
  }
  return any && at::GradMode::is_enabled();
}

// What fastcnn.ops._op.once_differentiable does for the Python Functions: a backward run with
// create_graph=True returns results that refuse to be differentiated again.
inline variable_list once_differentiable(const variable_list& grad_outputs, variable_list grads) {
  if (!at::GradMode::is_enabled()) return grads;
  bool needs = false;
  for (const auto& g : grad_outputs) needs = needs || (g.defined() && g.requires_grad());
  if (!needs) return grads;
  for (auto& g : grads) {  // as torch's once_differentiable: the error node needs inputs requiring grad
    if (!g.defined()) continue;
    g = g.detach();
    g.set_requires_grad(true);
  }
  const auto n = static_cast<int64_t>(grads.size());
  return torch::autograd::DelayedError(
             "trying to differentiate twice a function that was marked with @once_differentiable", n)
      .apply(std::move(grads));
}

// The backward node of an eager op with one output. Derived has `static constexpr const char* kName`,
// `variable_list backward(const at::Tensor& gy)` (one entry per connected input) and
// `void release_variables()` (resets its SavedVariables once a backward without retain_graph ran).
template <class Derived>
struct BackwardNode : Node {
  std::string name() const override { return Derived::kName; }

  variable_list apply(variable_list&& grad_outputs) override {
    if (!grad_outputs[0].defined()) return variable_list(num_outputs());  // a zero gradient: zeros onward
    follow_torch_threads();
    variable_list grads = static_cast<Derived*>(this)->backward(grad_outputs[0]);
    return once_differentiable(grad_outputs, std::move(grads));
  }
};

// A new NodeT whose inputs' gradients flow to `inputs` (an undefined tensor for an absent optional
// one), made output's grad_fn. Save outputs in it only after this (SavedVariable(out, true)).
template <class NodeT, class... Inputs>
c10::intrusive_ptr<NodeT> connect(const at::Tensor& output, const Inputs&... inputs) {
  auto node = c10::make_intrusive<NodeT>();
  node->set_next_edges(torch::autograd::collect_next_edges(inputs...));
  torch::autograd::set_history(output, node);
  return node;
}

}  // namespace fastcnn::eager

// Registers fastcnn_eager::<name> with its schema and `function` as its CompositeImplicitAutograd
// kernel: one kernel for every dispatch key (with and without grad, inference mode); the function
// itself decides whether to record a backward node (records_grad).
#define FASTCNN_EAGER_OP(name, schema, function)                                               \
  TORCH_LIBRARY_FRAGMENT(fastcnn_eager, m) { m.def(schema); }                                   \
  TORCH_LIBRARY_IMPL(fastcnn_eager, CompositeImplicitAutograd, m) { m.impl(name, function); }
