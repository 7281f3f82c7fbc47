// Reductions (sum, max; mean, min, var and std composed) and broadcasting (expand, sum_to), each rule next to its
// forward.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using detail::SavedTensor;

namespace {

struct Reduction {
  Shape kept;     // input shape with reduced dims set to 1
  Shape result;   // the output shape (kept, or with reduced dims removed)
  int64_t count;  // elements reduced into each output
};

Reduction plan(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined", op));
  const Shape& s = x.shape();
  bool reduce[kMaxDims] = {};
  if (dims.empty()) {
    for (int i = 0; i < s.size(); ++i) reduce[i] = true;
  } else {
    for (int64_t d : dims) {
      const int nd = normalize_dim_or_scalar(d, s.size(), op);  // 0-d: reduce[0] is never read
      if (reduce[nd])
        throw std::invalid_argument(fmt::format("{}: dim {} appears more than once in the dims", op, d));
      reduce[nd] = true;
    }
  }
  Reduction r{s, Shape{}, 1};
  for (int i = 0; i < s.size(); ++i) {
    if (reduce[i]) {
      r.count *= s[i];
      r.kept.set(i, 1);
      if (keepdim) r.result.push_back(1);
    } else {
      r.result.push_back(s[i]);
    }
  }
  return r;
}

// The fold of all n elements into one, in kLanes interleaved partial folds combined at the end:
// independent chains the compiler vectorises, where one running fold waits on each step. Past
// kCascade elements the two halves are folded apart and then together (a cascade, as PyTorch's
// sums: a sum's rounding error grows with log n, not n; ten million 0.1s in float64 were off by
// 2e-11, now by ~1e-16; the recursion is log2(n / kCascade) deep). The order is fixed, so the
// result is the same on every run. The partials are Acc's.
constexpr int kLanes = 8;
constexpr int64_t kCascade = 4096;
template <class Acc, class T, class F>
Acc fold_all(const T* px, int64_t n, Acc init, F fold) {
  if (n > kCascade) {
    const int64_t half = n / 2 / kLanes * kLanes;
    return fold(fold_all(px, half, init, fold), fold_all(px + half, n - half, init, fold));
  }
  Acc lane[kLanes];
  std::fill(lane, lane + kLanes, init);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane[k] = fold(lane[k], static_cast<Acc>(px[i + k]));
  for (int k = 0; i < n; ++i, ++k) lane[k] = fold(lane[k], static_cast<Acc>(px[i]));
  Acc acc = init;
  for (int k = 0; k < kLanes; ++k) acc = fold(acc, lane[k]);
  return acc;
}

// out[kept index] = fold over the reduced elements, starting from `init`. kWide: a sum (init 0),
// folded in double whatever the dtype (float32's 24 bits, adding five million 0.1s one after
// another, end 4% short; PyTorch sums float32 in a cascade), over leading dims by sum_onto; else
// in the tensor's type (max).
template <bool kWide, class F>
Tensor reduce_kernel(const Tensor& x, const Reduction& r, double init, F fold) {
  Tensor out = detail::empty(r.result, x.dtype());
  detail::dispatch(x.dtype(), [&]<class T>() {
    using Acc = std::conditional_t<kWide, double, T>;
    const T* px = x.impl()->data<T>();
    T* po = out.impl()->data<T>();
    if (out.numel() == 1) {  // everything into one (x is contiguous: one element per index)
      po[0] = static_cast<T>(fold_all(px, x.numel(), static_cast<Acc>(init), fold));
      return;
    }
    // Only trailing dims reduced (sizes of 1 aside: softmax's sums over the last dim): each output
    // folds a contiguous run of r.count elements, in lanes and a cascade as above.
    bool trailing = true, reduced = false;
    for (int i = 0; i < x.shape().size(); ++i) {
      if (x.shape()[i] == 1) continue;
      if (r.kept[i] == 1) reduced = true;
      else if (reduced) trailing = false;
    }
    if (trailing) {
      for (int64_t o = 0; o < out.numel(); ++o)
        po[o] = static_cast<T>(fold_all(px + o * r.count, r.count, static_cast<Acc>(init), fold));
      return;
    }
    if constexpr (kWide) {  // a sum (init 0)
      detail::sum_onto(px, x.shape(), po, r.kept, false);
    } else {
      std::fill(po, po + out.numel(), static_cast<T>(init));
      detail::for_each_broadcast(x.shape(), x.shape(), r.kept,
                                 [&](int64_t i, int64_t, int64_t o) { po[o] = fold(po[o], px[i]); });
    }
  });
  return out;
}

std::vector<int64_t> dims_of(const Shape& s) { return s.to_vector(); }

}  // namespace

Tensor sum(const Tensor& x, Where where) { return sum(x, {}, false, where); }

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, Where where) {
  const Reduction r = plan(x, dims, keepdim, "sum");
  Tensor out = reduce_kernel<true>(x, r, 0.0, [](auto acc, auto v) { return acc + v; });
  if (detail::should_record({&x})) {
    detail::record(
        out, "sum", {&x},
        [kept = r.kept, shape = x.shape()](const Tensor& grad, detail::Node&) {
          return std::vector<Tensor>{expand(reshape(grad, dims_of(kept)), shape)};
        },
        where);
    detail::set_replay(out, {x}, [dims, keepdim, where](const std::vector<Tensor>& in) {
      return sum(in[0], dims, keepdim, where);
    });
  }
  return out;
}

Tensor mean(const Tensor& x, Where where) { return mean(x, {}, false, where); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, Where where) {
  const Reduction r = plan(x, dims, keepdim, "mean");
  // Over no elements: 0 / 0 = NaN, as PyTorch's and NumPy's mean (max, which has no value there,
  // throws instead).
  return sum(x, dims, keepdim, where) / Located<Tensor>(static_cast<double>(r.count), where);
}

Tensor max(const Tensor& x, Where where) { return max(x, {}, false, where); }

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, Where where) {
  const Reduction r = plan(x, dims, keepdim, "max");
  if (r.count == 0)
    throw std::invalid_argument(fmt::format("max: no elements to take the maximum of (shape {})",
                                            x.shape().str()));
  Tensor out = reduce_kernel<false>(x, r, -std::numeric_limits<double>::infinity(),
                             [](auto acc, auto v) { return v > acc || v != v ? v : acc; });
  if (detail::should_record({&x})) {
    detail::record(out, "max", {&x},
                   [sx = SavedTensor::input(x, 0), so = SavedTensor::output(out), kept = r.kept, dims, r](
                       const Tensor& grad, detail::Node& self) {
                     const Tensor X = sx.unpack(self);
                     const Tensor best = expand(reshape(so.unpack(self).detach(), dims_of(kept)), X.shape());
                     // The maxima; where the maximum is NaN, the NaNs (NaN == NaN is false).
                     const Tensor mask = equal(X, best) + isnan(X) * isnan(best);
                     const Tensor ties = expand(sum(mask, dims, true), X.shape());
                     return std::vector<Tensor>{expand(reshape(grad, dims_of(kept)), X.shape()) * mask / ties};
                   },
                   where);
    detail::set_replay(out, {x}, [dims, keepdim, where](const std::vector<Tensor>& in) {
      return max(in[0], dims, keepdim, where);
    });
  }
  return out;
}

Tensor min(const Tensor& x, Where where) { return min(x, {}, false, where); }

Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, Where where) {
  const Reduction r = plan(x, dims, keepdim, "min");
  if (r.count == 0)
    throw std::invalid_argument(fmt::format("min: no elements to take the minimum of (shape {})",
                                            x.shape().str()));
  return -Located<Tensor>(max(-Located<Tensor>(x, where), dims, keepdim, where), where);
}

Tensor var(const Tensor& x, Where where) { return var(x, {}, false, 1, where); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, double correction, Where where) {
  const Reduction r = plan(x, dims, keepdim, "var");
  const Tensor centred = x - Located<Tensor>(mean(x, dims, true, where), where);
  return sum(centred * Located<Tensor>(centred, where), dims, keepdim, where) /
         Located<Tensor>(static_cast<double>(r.count) - correction, where);
}

Tensor std(const Tensor& x, Where where) { return std(x, {}, false, 1, where); }

Tensor std(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, double correction, Where where) {
  return sqrt(var(x, dims, keepdim, correction, where), where);
}

Tensor expand(const Tensor& x, const Shape& shape, Where where) {
  if (!x.defined()) throw std::invalid_argument("expand: the tensor is undefined");
  const Shape b = broadcast_shapes(x.shape(), shape, "expand");
  if (!(b == shape))
    throw std::invalid_argument(fmt::format("expand: shape {} cannot be expanded to {}", x.shape().str(),
                                            shape.str()));
  // Nothing to do: while recording, x itself (as PyTorch; a graph is one thread's); otherwise a
  // copy, since copying x's handle writes its count, which a model evaluated under NoGradGuard
  // from several threads would race on.
  if (x.shape() == shape) return detail::should_record({&x}) ? x : x.detach();
  Tensor out = detail::empty(shape, x.dtype());
  detail::dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.impl()->data<T>();
    T* po = out.impl()->data<T>();
    if (x.numel() == 1) return std::fill(po, po + out.numel(), px[0]);
    detail::for_each_broadcast(shape, x.shape(), shape, [&](int64_t o, int64_t i, int64_t) { po[o] = px[i]; });
  });
  if (detail::should_record({&x})) {
    detail::record(
        out, "expand", {&x},
        [shape = x.shape()](const Tensor& grad, detail::Node&) { return std::vector<Tensor>{sum_to(grad, shape)}; },
        where);
    detail::set_replay(out, {x}, [shape, where](const std::vector<Tensor>& in) { return expand(in[0], shape, where); });
  }
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (!x.defined()) throw std::invalid_argument("sum_to: the tensor is undefined");
  const Shape& s = x.shape();
  if (s == shape) return detail::should_record({&x}) ? x : x.detach();  // as expand
  if (!(broadcast_shapes(shape, s, "sum_to") == s))
    throw std::invalid_argument(fmt::format("sum_to: shape {} does not broadcast to {}", shape.str(), s.str()));
  std::vector<int64_t> dims;
  const int lead = s.size() - shape.size();
  for (int i = 0; i < s.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && s[i] != 1)) dims.push_back(i);
  Tensor out = dims.empty() ? x : sum(x, dims, true);
  return reshape(out, shape.to_vector());
}

}  // namespace chainrule
