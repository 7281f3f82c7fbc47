// Index ops: index_select gathers slices along a dim by a list of indices, index_add adds slices
// back at those indices (a scatter-add). Each is the other's rule, so a recorded backward
// (create_graph) works to any order:
//   index_select:  y = x[..., idx[k], ...] along dim     dx = index_add(zeros like x, dim, idx, grad)
//   index_add:     y = base, with src[k] added at idx[k]  dbase = grad   dsrc = index_select(grad, dim, idx)
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

namespace {

void check_defined(const Tensor& t, const char* what, const char* op) {
  if (!t.defined()) throw std::invalid_argument(fmt::format("{}: {} is undefined", op, what));
}

// Where dim splits a shape: `outer` runs before it, `inner` elements after it in each slice.
struct Split {
  int dim;
  int64_t outer = 1, size, inner = 1;
  Split(const Shape& s, int64_t dim_, const char* op) : dim(normalize_dim(dim_, s.size(), op)), size(s[dim]) {
    for (int i = 0; i < dim; ++i) outer *= s[i];
    for (int i = dim + 1; i < s.size(); ++i) inner *= s[i];
  }
};

// Every index in [0, size): as PyTorch's index_select, a negative index is out of range too.
void check_indices(const std::vector<int64_t>& idx, const Split& s, const Shape& shape, const char* op) {
  for (std::size_t k = 0; k < idx.size(); ++k)
    if (idx[k] < 0 || idx[k] >= s.size)
      throw std::out_of_range(fmt::format("{}: index {} (position {}) is out of range for dim {} of size {} (shape {})",
                                          op, idx[k], k, s.dim, s.size, shape.str()));
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& indices, Where where) {
  check_defined(x, "the tensor", "index_select");
  if (x.dim() == 0) throw std::invalid_argument("index_select: the tensor is 0-d; it has no dim to select along");
  const Split s(x.shape(), dim, "index_select");
  check_indices(indices, s, x.shape(), "index_select");
  const int64_t n = static_cast<int64_t>(indices.size());
  Shape out_shape = x.shape();
  out_shape.set(s.dim, n);
  Tensor result = detail::empty(out_shape, x.dtype());
  detail::dispatch(x.dtype(), [&]<class T>() {
    const T* in = x.impl()->data<T>();
    T* out = result.impl()->data<T>();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t k = 0; k < n; ++k) {
        const T* from = in + (o * s.size + indices[static_cast<std::size_t>(k)]) * s.inner;
        T* to = out + (o * n + k) * s.inner;
        for (int64_t j = 0; j < s.inner; ++j) to[j] = from[j];
      }
  });
  if (!detail::should_record({&x})) {
    detail::check_forward(result, "index_select", where);
    return result;
  }
  const int d = s.dim;
  detail::record(result, "index_select", {&x}, [shape = x.shape(), d, indices](const Tensor& grad, detail::Node&) {
    return std::vector<Tensor>{index_add(zeros(shape, grad.dtype()), d, indices, grad)};
  }, where);
  detail::set_replay(result, {x}, [d, indices, where](const std::vector<Tensor>& in) {
    return index_select(in[0], d, indices, where);
  });
  return result;
}

Tensor index_add(const Tensor& base, int64_t dim, const std::vector<int64_t>& indices, const Tensor& source,
                 Where where) {
  check_defined(base, "the base tensor", "index_add");
  check_defined(source, "the source tensor", "index_add");
  if (base.dim() == 0) throw std::invalid_argument("index_add: the base tensor is 0-d; it has no dim to add along");
  if (base.dtype() != source.dtype())
    throw std::invalid_argument(fmt::format("index_add: base is {} and source is {}; convert one with .to()",
                                            dtype_name(base.dtype()), dtype_name(source.dtype())));
  const Split s(base.shape(), dim, "index_add");
  check_indices(indices, s, base.shape(), "index_add");
  const int64_t n = static_cast<int64_t>(indices.size());
  Shape expected = base.shape();
  expected.set(s.dim, n);
  if (source.shape() != expected)
    throw std::invalid_argument(fmt::format(
        "index_add: source has shape {}, but base {} with {} indices along dim {} needs {}", source.shape().str(),
        base.shape().str(), n, s.dim, expected.str()));
  Tensor result = detail::empty(base.shape(), base.dtype());
  detail::dispatch(base.dtype(), [&]<class T>() {
    const T* b = base.impl()->data<T>();
    const T* src = source.impl()->data<T>();
    T* out = result.impl()->data<T>();
    std::copy(b, b + base.numel(), out);
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t k = 0; k < n; ++k) {
        T* to = out + (o * s.size + indices[static_cast<std::size_t>(k)]) * s.inner;
        const T* from = src + (o * n + k) * s.inner;
        for (int64_t j = 0; j < s.inner; ++j) to[j] += from[j];
      }
  });
  if (!detail::should_record({&base, &source})) {
    detail::check_forward(result, "index_add", where);
    return result;
  }
  const int d = s.dim;
  detail::record(result, "index_add", {&base, &source}, [d, indices](const Tensor& grad, detail::Node& self) {
    return std::vector<Tensor>{self.needs(0) ? grad : Tensor(),
                               self.needs(1) ? index_select(grad, d, indices) : Tensor()};
  }, where);
  detail::set_replay(result, {base, source}, [d, indices, where](const std::vector<Tensor>& in) {
    return index_add(in[0], d, indices, in[1], where);
  });
  return result;
}

}  // namespace chainrule
