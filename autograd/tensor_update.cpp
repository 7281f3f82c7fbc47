// backward_and_update: one reverse sweep with the parameters' updates fused in (a Dense weight's
// gradient product is added straight into the weight by one gemm); see autograd/tensor.h.
#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/tensor_record.h"
#include "autograd/tensor_sweep.h"

namespace chainrule {
namespace detail {

void Sweep::fuse(const std::vector<ParamUpdate>& updates) {
  for (size_t i = 0; i < updates.size(); ++i) {
    const Tensor& p = updates[i].param;
    if (!p.defined()) throw std::invalid_argument(fmt::format("backward_and_update: parameter {} is undefined", i));
    if (!p.is_leaf() || !p.requires_grad())
      throw std::invalid_argument(fmt::format(
          "backward_and_update: parameter {} (shape {}) must be a leaf that requires grad", i, p.shape().str()));
    TensorImpl* leaf = p.impl();
    if (uint32_t slot; seen(*leaf, slot))
      throw std::invalid_argument(
          fmt::format("backward_and_update: parameter {} appears twice (also at {})", i, slot));
    see(*leaf, static_cast<uint32_t>(leaf_grads.size()));
    leaf_grads.emplace_back(p.impl_ref(), Tensor());
  }
  fused_ = static_cast<uint32_t>(updates.size());
}

// Only a product for a parameter, in its dtype and size, that reads no parameter's bytes is taken:
// apply_updates writes every parameter before it adds the deferred products (matmul(w, w), or
// linear(p, w) and p @ w with p a parameter too, compute their gradients in the sweep).
bool Sweep::defer(Edge& e, Product& p) {
  uint32_t slot;
  if (fused_ == 0 || create_graph_ || wanted_ || !e.leaf || !seen(*e.leaf, slot) || slot >= fused_) return false;
  const TensorImpl& w = *e.leaf;
  const TensorImpl& a = *p.a.impl();
  const TensorImpl& b = *p.b.impl();
  if (a.dtype != w.dtype || b.dtype != w.dtype || p.n * p.m != w.numel || a.numel != p.n * p.k ||
      b.numel != p.k * p.m)
    return false;
  for (uint32_t i = 0; i < fused_; ++i)
    if (const auto& s = leaf_grads[i].first->storage; a.storage == s || b.storage == s) return false;
  deferred_.push_back({slot, std::move(p)});
  return true;
}

void Sweep::apply_updates(const std::vector<ParamUpdate>& updates) {
  // Every check first: a parameter and each gradient to add into it (this sweep's, and a .grad
  // accumulated by earlier backward() calls) must have the same shape and dtype.
  auto check = [&](size_t i, const Tensor& g, const char* what) {
    const Tensor& p = updates[i].param;
    if (!(g.shape() == p.shape()) || g.dtype() != p.dtype())
      throw std::invalid_argument(fmt::format("backward_and_update: parameter {} is {} {} but its {} is {} {}", i,
                                              dtype_name(p.dtype()), p.shape().str(), what, dtype_name(g.dtype()),
                                              g.shape().str()));
  };
  std::vector<char> has(updates.size(), 0);
  for (size_t i = 0; i < updates.size(); ++i) {
    const TensorImpl& p = *updates[i].param.impl();
    if (p.grad) check(i, Tensor(p.grad), "accumulated gradient");
    if (leaf_grads[i].second.defined()) check(i, leaf_grads[i].second, "gradient");
    has[i] = p.grad || leaf_grads[i].second.defined();
  }
  for (const Deferred& d : deferred_) has[d.slot] = 1;

  NoGradGuard no_grad;
  // Anomaly mode: each parameter's new values are made in a copy and checked (add_ checks them) before
  // any parameter is written, so a NaN or an infinity throws with every parameter and .grad as it
  // was. (Products are deferred only by the fast sweep, which anomaly mode does not run.)
  const bool staged = AnomalyMode::enabled();
  std::vector<Tensor> next(updates.size());
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!has[i]) continue;
    const ParamUpdate& u = updates[i];
    TensorImpl& p = *u.param.impl();
    Tensor param = staged ? u.param.clone() : u.param;
    TensorImpl& w = *param.impl();
    if (u.scale != 1.0)
      detail::dispatch(w.dtype, [&]<class T>() {
        T* v = w.data<T>();
        for (int64_t j = 0; j < w.numel; ++j) v[j] *= static_cast<T>(u.scale);
      });
    if (staged) check_forward(param, "backward_and_update", Where::current());
    // The gradients go in as the unfused step's do: add_ (BLAS's axpy).
    if (p.grad) param.add_(staged ? Tensor(p.grad) : Tensor(std::exchange(p.grad, Ref<TensorImpl>())), u.alpha);
    if (leaf_grads[i].second.defined()) param.add_(leaf_grads[i].second, u.alpha);
    if (staged) next[i] = std::move(param);
    else ++p.storage->version;  // also when only deferred products follow
  }
  if (staged)
    for (size_t i = 0; i < updates.size(); ++i) {
      if (!next[i].defined()) continue;
      TensorImpl& p = *updates[i].param.impl();
      std::memcpy(p.storage->data, next[i].impl()->storage->data, static_cast<size_t>(p.numel * dtype_size(p.dtype)));
      p.grad = Ref<TensorImpl>();
      ++p.storage->version;
    }
  for (const Deferred& d : deferred_)
    detail::add_product(*updates[d.slot].param.impl(), d.product, updates[d.slot].alpha);
}

}  // namespace detail

void backward_and_update(const Tensor& y, const std::vector<ParamUpdate>& updates) {
  detail::check_requires_grad(y, "backward_and_update");
  const Tensor seed = detail::default_seed(
      y, "backward_and_update", "a fused step takes no seed: reduce the loss to one element first (sum or mean)");
  detail::Sweep sweep(false, nullptr);
  sweep.fuse(updates);
  sweep.run({{y, seed}});
  sweep.check_leaf_grads();
  sweep.new_leaf_grads(false);
  sweep.apply_updates(updates);  // checks every parameter before its first write
  sweep.free_graph(false);
  sweep.set_leaf_grads();
}

}  // namespace chainrule
