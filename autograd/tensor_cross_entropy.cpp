// softmax_cross_entropy: the cross-entropy of rows of logits against class indices, one node (the
// fused form of log_softmax and the pick; nn::cross_entropy's default path). Its rule sits here:
//   y_n = log sum_j e^(x_nj) - x_n,t_n        dx_n = grad_n * (softmax(x_n) - onehot(t_n))
// Each row is computed with its maximum subtracted, in double. The forward keeps softmax(x) when it
// records, so that the plain backward is one pass without an exponential; under create_graph the
// same rule is written with Tensor ops, so that it can be differentiated again.
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using detail::SavedTensor;

namespace {

struct Rows {
  int64_t n, c;
  bool single;  // logits [C] with one target: the result is []
};

Rows check_rows(const Tensor& logits, const std::vector<int64_t>& target) {
  constexpr const char* op = "softmax_cross_entropy";
  if (!logits.defined()) throw std::invalid_argument(fmt::format("{}: the logits are undefined", op));
  const Shape& s = logits.shape();
  if (s.size() != 1 && s.size() != 2)
    throw std::invalid_argument(fmt::format("{}: the logits must be [N, C] or [C], got {}", op, s.str()));
  const Rows r{s.size() == 2 ? s[0] : 1, s[s.size() - 1], s.size() == 1};
  if (r.c == 0) throw std::invalid_argument(fmt::format("{}: the logits {} have no classes", op, s.str()));
  if (static_cast<int64_t>(target.size()) != r.n)
    throw std::invalid_argument(
        fmt::format("{}: {} target(s) for logits {} ({} row(s))", op, target.size(), s.str(), r.n));
  for (size_t k = 0; k < target.size(); ++k)
    if (target[k] < 0 || target[k] >= r.c)
      throw std::out_of_range(fmt::format("{}: target {} of row {} is outside the {} classes [0, {}) of logits {}", op,
                                          target[k], k, r.c, r.c, s.str()));
  return r;
}

// The losses; softmax(x) into *softmax unless it is null.
template <class T>
void forward_rows(const Rows& r, const T* in, const std::vector<int64_t>& target, T* out,
                  std::vector<double>* softmax) {
  for (int64_t row = 0; row < r.n; ++row) {
    const T* x = in + row * r.c;
    T top = x[0];  // NaN if any entry is, as max()
    for (int64_t j = 1; j < r.c; ++j)
      if (std::isnan(x[j]) || x[j] > top) top = std::isnan(top) ? top : x[j];
    double total = 0.0;
    double* p = softmax ? softmax->data() + row * r.c : nullptr;
    for (int64_t j = 0; j < r.c; ++j) {
      const double e = std::exp(static_cast<T>(x[j] - top));
      total += e;
      if (p) p[j] = e;
    }
    if (p)
      for (int64_t j = 0; j < r.c; ++j) p[j] /= total;
    // The sum is >= 1 (the maximum contributes e^0), so its log is finite. The target is read at
    // its index (not a one-hot mask times the row: 0 * -inf would be NaN for a logit of -inf in
    // another class).
    const int64_t t = target[static_cast<size_t>(row)];
    out[row] = static_cast<T>(std::log(total) - static_cast<double>(x[t] - top));
  }
}

// dx_n = grad_n (softmax_n - onehot_n) from the kept softmax.
template <class T>
Tensor backward_rows(const Rows& r, const Shape& shape, const std::vector<double>& softmax,
                     const std::vector<int64_t>& target, const Tensor& grad) {
  Tensor dx = detail::empty(shape, grad.dtype());
  T* out = dx.impl()->data<T>();
  const T* g = grad.impl()->data<T>();
  for (int64_t row = 0; row < r.n; ++row) {
    const double s = static_cast<double>(g[row]);
    const double* p = softmax.data() + row * r.c;
    const int64_t t = target[static_cast<size_t>(row)];
    for (int64_t j = 0; j < r.c; ++j) out[row * r.c + j] = static_cast<T>(s * (p[j] - (j == t ? 1.0 : 0.0)));
  }
  return dx;
}

}  // namespace

Tensor softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& target, Where where) {
  const Rows r = check_rows(logits, target);
  Tensor result = detail::empty(r.single ? Shape{} : Shape{r.n}, logits.dtype());
  const bool records = detail::should_record({&logits});
  std::vector<double> softmax(records ? static_cast<size_t>(r.n * r.c) : 0);
  detail::dispatch(logits.dtype(), [&]<class T>() {
    forward_rows<T>(r, logits.impl()->data<T>(), target, result.impl()->data<T>(), records ? &softmax : nullptr);
  });
  if (!records) {
    detail::check_forward(result, "softmax_cross_entropy", where);
    return result;
  }
  detail::record(
      result, "softmax_cross_entropy", {&logits},
      [r, target, softmax = std::move(softmax), sx = SavedTensor::input(logits, 0)](const Tensor& grad,
                                                                                 detail::Node& self) {
        if (!GradMode::enabled()) {
          sx.storage(self);  // throws if the logits were modified in place since
          return std::vector<Tensor>{detail::dispatch(grad.dtype(), [&]<class T>() {
            return backward_rows<T>(r, sx.shape(self), softmax, target, grad);
          })};
        }
        // Recorded (create_graph): softmax(x) - onehot, times grad per row, as Tensor ops.
        const Tensor x = sx.unpack(self);
        const int64_t dim = r.single ? 0 : 1;
        const Tensor e = exp(x - max(x, {dim}, true).detach());
        std::vector<double> one_hot(static_cast<size_t>(r.n * r.c), 0.0);
        for (int64_t row = 0; row < r.n; ++row)
          one_hot[static_cast<size_t>(row * r.c + target[static_cast<size_t>(row)])] = 1.0;
        const Tensor mask = from_vector(one_hot, x.shape(), x.dtype());
        const Tensor g = r.single ? grad : reshape(grad, {r.n, 1});
        return std::vector<Tensor>{(e / sum(e, {dim}, true) - mask) * g};
      },
      where);
  detail::set_replay(result, {logits}, [target, where](const std::vector<Tensor>& in) {
    return softmax_cross_entropy(in[0], target, where);
  });
  return result;
}

}  // namespace chainrule
