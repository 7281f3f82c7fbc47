// Shape ops (permute, reshape, slice, concat; transpose and stack composed from them) and the dtype
// cast, each rule next to its forward. Every result is a new contiguous tensor, so the kernels are
// copies; the rules are written with these same ops, so a recorded backward (create_graph) works.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

namespace {

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined", op));
}

std::string dims_str(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// Bytes of `count` elements; memcpy is never handed a null pointer for an empty tensor.
void copy_elements(void* dst, const void* src, int64_t count, DType d) {
  if (count > 0) std::memcpy(dst, src, static_cast<size_t>(count * dtype_size(d)));
}

char* bytes(const Tensor& t) { return static_cast<char*>(t.impl()->storage->data); }

// out[i0, ..., in] = x[the same index read through `strides`]: a generic strided gather, one run
// along the last dim at a time.
template <class T>
void strided_copy(const T* in, T* out, const Shape& out_shape, const int64_t* strides) {
  const int n = out_shape.size();
  const int64_t total = out_shape.numel();
  if (total == 0) return;
  if (n == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t run = out_shape[n - 1], step = strides[n - 1];
  int64_t idx[kMaxDims] = {};
  int64_t offset = 0;
  for (int64_t o = 0; o < total; o += run) {
    for (int64_t j = 0; j < run; ++j) out[o + j] = in[offset + j * step];
    for (int d = n - 2; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims, Where where) {
  check_defined(x, "permute");
  const Shape& s = x.shape();
  const int n = s.size();
  if (static_cast<int>(dims.size()) != n)
    throw std::invalid_argument(
        fmt::format("permute: dims {} name {} dimensions, but the tensor of shape {} has {}", dims_str(dims),
                    dims.size(), s.str(), n));
  std::vector<int64_t> perm(n);
  bool seen[kMaxDims] = {};
  for (int i = 0; i < n; ++i) {
    const int64_t d = dims[i] < 0 ? dims[i] + n : dims[i];
    if (d < 0 || d >= n)
      throw std::out_of_range(fmt::format("permute: dim {} in dims {} is out of range for shape {}", dims[i],
                                          dims_str(dims), s.str()));
    if (seen[d])
      throw std::invalid_argument(
          fmt::format("permute: dims {} are not a permutation of the {} dims of shape {} (dim {} repeats)",
                      dims_str(dims), n, s.str(), dims[i]));
    seen[d] = true;
    perm[i] = d;
  }

  int64_t in_strides[kMaxDims], strides[kMaxDims];
  contiguous_strides(s, in_strides);
  Shape out_shape;
  for (int i = 0; i < n; ++i) {
    out_shape.push_back(s[perm[i]]);
    strides[i] = in_strides[perm[i]];
  }
  Tensor result = detail::empty(out_shape, x.dtype());
  detail::dispatch(x.dtype(), [&]<class T>() {
    strided_copy(x.impl()->data<T>(), result.impl()->data<T>(), out_shape, strides);
  });

  if (!detail::should_record({&x})) {
    detail::check_forward(result, "permute", where);
    return result;
  }
  std::vector<int64_t> inverse(n);
  for (int i = 0; i < n; ++i) inverse[perm[i]] = i;
  detail::record(
      result, "permute", {&x},
      [inverse](const Tensor& grad, detail::Node&) { return std::vector<Tensor>{permute(grad, inverse)}; }, where);
  detail::set_replay(result, {x}, [perm, where](const std::vector<Tensor>& in) { return permute(in[0], perm, where); });
  return result;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1, Where where) {
  check_defined(x, "transpose");
  const int n = x.dim();
  const int d0 = normalize_dim_or_scalar(dim0, n, "transpose"), d1 = normalize_dim_or_scalar(dim1, n, "transpose");
  std::vector<int64_t> perm(n);
  for (int i = 0; i < n; ++i) perm[i] = i;
  if (n > 0) std::swap(perm[d0], perm[d1]);
  return permute(x, perm, where);
}

namespace {

// reshape's node: the rule is a reshape back to the input's shape. The fast sweep relabels a
// gradient that it alone holds (the usual case) instead of copying it: same bytes, new shape.
struct ReshapeNode final : detail::Node {
  Shape input_shape;
  explicit ReshapeNode(Shape s) : input_shape(std::move(s)) {}
  std::vector<Tensor> apply(const Tensor& grad) override { return {reshape(grad, input_shape.to_vector())}; }
  bool apply_fast(Tensor& grad, detail::GradSink& sink) override {
    if (!needs(0) || !detail::sole_owner(grad) || grad.numel() != input_shape.numel() || grad.dtype() != next[0].dtype)
      return false;
    grad.impl()->shape = input_shape;
    sink.add(next[0], grad);
    return true;
  }
  void release_saved() override {}
};

// The shape `shape` asks of x (one -1 inferred); std::invalid_argument when it cannot hold x.
Shape reshaped(const Tensor& x, const std::vector<int64_t>& shape) {
  const Shape& s = x.shape();
  if (static_cast<int>(shape.size()) > kMaxDims)
    throw std::invalid_argument(
        fmt::format("reshape: cannot reshape {} into {}: at most {} dimensions are supported", s.str(),
                    dims_str(shape), kMaxDims));
  int inferred = -1;
  int64_t known = 1;
  for (int i = 0; i < static_cast<int>(shape.size()); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0)
        throw std::invalid_argument(fmt::format("reshape: cannot reshape {} into {}: only one dimension can be -1",
                                                s.str(), dims_str(shape)));
      inferred = i;
    } else if (shape[i] < 0) {
      throw std::invalid_argument(fmt::format("reshape: cannot reshape {} into {}: negative dimension {}", s.str(),
                                              dims_str(shape), shape[i]));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      // Shape's own limit, said here before the product overflows (a later 0 would not save it).
      throw std::invalid_argument(fmt::format(
          "reshape: cannot reshape {} into {}: the product of the dimensions exceeds 2^63 - 1", s.str(),
          dims_str(shape)));
    }
  }
  std::vector<int64_t> out = shape;
  if (inferred >= 0) {
    if (known == 0)
      throw std::invalid_argument(
          fmt::format("reshape: cannot reshape {} into {}: the -1 is ambiguous next to a 0 dimension", s.str(),
                      dims_str(shape)));
    if (x.numel() % known != 0)
      throw std::invalid_argument(
          fmt::format("reshape: cannot reshape {} ({} elements) into {}: {} is not a multiple of {}", s.str(),
                      x.numel(), dims_str(shape), x.numel(), known));
    out[inferred] = x.numel() / known;
  } else if (known != x.numel()) {
    throw std::invalid_argument(fmt::format("reshape: cannot reshape {} ({} elements) into {} ({} elements)",
                                            s.str(), x.numel(), dims_str(shape), known));
  }
  return Shape(out);
}

// Records result = reshape(x) (or checks it when nothing records).
Tensor finish_reshape(Tensor result, const Tensor& x, const std::vector<int64_t>& shape, const Where& where) {
  if (!detail::should_record({&x})) {
    detail::check_forward(result, "reshape", where);
    return result;
  }
  Ref<detail::Node> node(new ReshapeNode(x.shape()));
  node->name = "reshape";
  node->where = where;
  detail::attach_node(result, std::move(node), {&x});
  detail::set_replay(result, {x}, [shape, where](const std::vector<Tensor>& in) { return reshape(in[0], shape, where); });
  return result;
}

}  // namespace

Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape, Where where) {
  check_defined(x, "reshape");
  Tensor result = detail::empty(reshaped(x, shape), x.dtype());
  copy_elements(bytes(result), bytes(x), x.numel(), x.dtype());
  return finish_reshape(std::move(result), x, shape, where);
}

Tensor reshape(Tensor&& x, const std::vector<int64_t>& shape, Where where) {
  check_defined(x, "reshape");
  const detail::TensorImpl& t = *x.impl();
  // Nobody else can see x's bytes (no other handle, no saved copy) and x is no leaf that keeps a
  // gradient: its bytes become the result's, under the new shape, and x is left undefined.
  if (t.refs != 1 || t.storage->refs != 1 || (t.requires_grad && !t.grad_fn) || t.wrapped_number)
    return reshape(static_cast<const Tensor&>(x), shape, where);
  Tensor result = detail::alias_detached(x);
  result.impl()->shape = reshaped(x, shape);
  result = finish_reshape(std::move(result), x, shape, where);
  x = Tensor();
  return result;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t stop, Where where) {
  check_defined(x, "slice");
  const Shape& s = x.shape();
  const int d = normalize_dim(dim, s.size(), "slice");
  const int64_t size = s[d];
  // Python slicing: negative bounds count from the end, then both are clamped to [0, size].
  const auto clamp = [size](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + size : i, 0, size); };
  const int64_t lo = clamp(start), hi = std::max(lo, clamp(stop));

  Shape out_shape = s;
  out_shape.set(d, hi - lo);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= s[i];
  for (int i = d + 1; i < s.size(); ++i) inner *= s[i];
  Tensor result = detail::empty(out_shape, x.dtype());
  const int64_t elem = dtype_size(x.dtype());
  for (int64_t o = 0; o < outer; ++o)
    copy_elements(bytes(result) + o * (hi - lo) * inner * elem, bytes(x) + (o * size + lo) * inner * elem,
                  (hi - lo) * inner, x.dtype());

  if (!detail::should_record({&x})) {
    detail::check_forward(result, "slice", where);
    return result;
  }
  // dx is grad padded with zeros to x's extent along dim: a concat, so that it records too.
  detail::record(result, "slice", {&x}, [s, d, lo, hi](const Tensor& grad, detail::Node&) {
    std::vector<Tensor> parts;
    Shape pad = s;
    if (lo > 0) {
      pad.set(d, lo);
      parts.push_back(zeros(pad, grad.dtype()));
    }
    parts.push_back(grad);
    if (hi < s[d]) {
      pad.set(d, s[d] - hi);
      parts.push_back(zeros(pad, grad.dtype()));
    }
    return std::vector<Tensor>{parts.size() == 1 ? grad : concat(parts, d)};
  }, where);
  detail::set_replay(result, {x}, [d, lo, hi, where](const std::vector<Tensor>& in) { return slice(in[0], d, lo, hi, where); });
  return result;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim, Where where) {
  if (xs.empty()) throw std::invalid_argument("concat: expected at least one tensor, got an empty list");
  for (size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw std::invalid_argument(fmt::format("concat: tensor {} is undefined", i));
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].shape().size() == 0)
      throw std::invalid_argument(
          fmt::format("concat: tensor {} is zero-dimensional (shape []); use stack to join numbers", i));
  // As LibTorch's cat: a 1-D empty tensor (shape [0]) joins tensors of any shape, and is skipped
  // (an accumulator started as zeros({0})). The shapes follow the first other tensor.
  auto legacy_empty = [](const Tensor& x) { return x.shape().size() == 1 && x.shape()[0] == 0; };
  const auto reference = std::find_if_not(xs.begin(), xs.end(), legacy_empty);
  const size_t r = reference == xs.end() ? 0 : static_cast<size_t>(reference - xs.begin());
  const Tensor& first = xs[r];
  const Shape& s0 = first.shape();
  auto skipped = [&](size_t i) { return s0.size() != 1 && legacy_empty(xs[i]); };
  const int d = normalize_dim(dim, s0.size(), "concat");
  Shape out_shape = s0;
  out_shape.set(d, 0);
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& si = xs[i].shape();
    if (xs[i].dtype() != first.dtype())
      throw std::invalid_argument(
          fmt::format("concat: tensor {} ({} {}) has a different dtype than tensor {} ({} {})", i,
                      dtype_name(xs[i].dtype()), si.str(), r, dtype_name(first.dtype()), s0.str()));
    if (skipped(i)) continue;
    bool same = si.size() == s0.size();
    for (int j = 0; same && j < si.size(); ++j) same = j == d || si[j] == s0[j];
    if (!same)
      throw std::invalid_argument(fmt::format(
          "concat: tensor {} has shape {} but tensor {} has shape {}: shapes must match except along dim {}", i,
          si.str(), r, s0.str(), d));
    int64_t joined = 0;
    if (__builtin_add_overflow(out_shape[d], si[d], &joined))
      throw std::invalid_argument(fmt::format("concat: the joined dim {} of tensors 0 to {} exceeds 2^63 - 1 (shape {})",
                                              d, i, si.str()));
    out_shape.set(d, joined);
  }

  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= s0[i];
  for (int i = d + 1; i < s0.size(); ++i) inner *= s0[i];
  Tensor result = detail::empty(out_shape, first.dtype());
  const int64_t elem = dtype_size(first.dtype());
  char* dst = bytes(result);
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < xs.size(); ++i) {
      if (skipped(i)) continue;
      const Tensor& x = xs[i];
      const int64_t run = x.shape()[d] * inner;
      copy_elements(dst, bytes(x) + o * run * elem, run, x.dtype());
      dst += run * elem;
    }
  }

  if (std::none_of(xs.begin(), xs.end(), [](const Tensor& x) { return detail::should_record({&x}); })) {
    detail::check_forward(result, "concat", where);
    return result;
  }
  // Each input's span along d in the result; a skipped one gets an empty gradient of its own shape.
  std::vector<std::pair<int64_t, int64_t>> spans;
  std::vector<bool> skip;
  int64_t at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    skip.push_back(skipped(i));
    const int64_t length = skip.back() ? 0 : xs[i].shape()[d];
    spans.emplace_back(at, at + length);
    at += length;
  }
  detail::record(result, "concat", xs, [spans, skip, d](const Tensor& grad, detail::Node& self) {
    std::vector<Tensor> grads(spans.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!self.needs(i)) continue;
      grads[i] = skip[i] ? zeros({0}, grad.dtype()) : slice(grad, d, spans[i].first, spans[i].second);
    }
    return grads;
  }, where);
  detail::set_replay(result, xs, [d, where](const std::vector<Tensor>& in) { return concat(in, d, where); });
  return result;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim, Where where) {
  if (xs.empty()) throw std::invalid_argument("stack: expected at least one tensor, got an empty list");
  for (size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw std::invalid_argument(fmt::format("stack: tensor {} is undefined", i));
  const Shape& s0 = xs[0].shape();
  for (size_t i = 1; i < xs.size(); ++i) {
    if (!(xs[i].shape() == s0))
      throw std::invalid_argument(
          fmt::format("stack: tensor {} has shape {} but tensor 0 has shape {}: all shapes must be equal", i,
                      xs[i].shape().str(), s0.str()));
    if (xs[i].dtype() != xs[0].dtype())
      throw std::invalid_argument(fmt::format("stack: tensor {} is {} but tensor 0 is {}", i,
                                              dtype_name(xs[i].dtype()), dtype_name(xs[0].dtype())));
  }
  const int n = s0.size() + 1;  // the result's dims
  if (n > kMaxDims)  // said here: the reshape below would name itself, not stack
    throw std::invalid_argument(fmt::format(
        "stack: tensors of shape {} have {} dimensions; stacking adds one, and at most {} are supported",
        s0.str(), s0.size(), kMaxDims));
  if (dim < -n || dim >= n)
    throw std::out_of_range(
        fmt::format("stack: dim {} is out of range for stacking tensors of shape {} (expected {} to {})", dim,
                    s0.str(), -n, n - 1));
  const int d = static_cast<int>(dim < 0 ? dim + n : dim);
  std::vector<int64_t> unsqueezed = s0.to_vector();
  unsqueezed.insert(unsqueezed.begin() + d, 1);
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& x : xs) parts.push_back(reshape(x, unsqueezed, where));
  return concat(parts, d, where);
}

Tensor Tensor::to(DType dtype, Where where) const {
  check_defined(*this, "cast");
  // Already that dtype: itself while recording (as PyTorch), else a copy (see expand).
  if (this->dtype() == dtype) return detail::should_record({this}) ? *this : detach();
  Tensor result = detail::empty(shape(), dtype);
  detail::dispatch(this->dtype(), [&]<class S>() {
    detail::dispatch(dtype, [&]<class D>() {
      const S* src = impl()->data<S>();
      D* dst = result.impl()->data<D>();
      for (int64_t i = 0, count = numel(); i < count; ++i) dst[i] = static_cast<D>(src[i]);
    });
  });
  result.impl()->wrapped_number = impl()->wrapped_number;
  if (!detail::should_record({this})) {
    detail::check_forward(result, "cast", where);  // float64 -> float32 can overflow
    return result;
  }
  detail::record(
      result, "cast", {this},
      [from = this->dtype()](const Tensor& grad, detail::Node&) { return std::vector<Tensor>{grad.to(from)}; }, where);
  detail::set_replay(result, {*this}, [dtype, where](const std::vector<Tensor>& in) { return in[0].to(dtype, where); });
  return result;
}

Tensor squeeze(const Tensor& x, Where where) {
  check_defined(x, "squeeze");
  std::vector<int64_t> shape;
  for (int64_t d : x.shape())
    if (d != 1) shape.push_back(d);
  return reshape(x, shape, where);
}

Tensor squeeze(const Tensor& x, int64_t dim, Where where) {
  check_defined(x, "squeeze");
  const int d = normalize_dim_or_scalar(dim, x.dim(), "squeeze");
  std::vector<int64_t> shape = x.shape().to_vector();
  if (x.dim() > 0 && shape[d] == 1) shape.erase(shape.begin() + d);
  return reshape(x, shape, where);
}

Tensor unsqueeze(const Tensor& x, int64_t dim, Where where) {
  check_defined(x, "unsqueeze");
  const int d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  if (x.dim() == kMaxDims)
    throw std::invalid_argument(fmt::format("unsqueeze: {} already has the most dimensions supported ({})",
                                            x.shape().str(), kMaxDims));
  std::vector<int64_t> shape = x.shape().to_vector();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape, where);
}

}  // namespace chainrule
