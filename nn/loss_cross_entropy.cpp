#include "nn/loss_classification.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <stdexcept>

#include "nn/activation.h"

namespace chainrule::nn {

using detail::reduce;

// ---- cross entropy ----

namespace {

struct Logits {
  int64_t n, c;
  bool single;  // input [C]
};

Logits check_logits(const Tensor& input) {
  if (!input.defined()) throw std::invalid_argument("CrossEntropyLoss: the input is undefined");
  if (input.dim() == 2) return {input.size(0), input.size(1), false};
  if (input.dim() == 1) return {1, input.size(0), true};
  throw std::invalid_argument(fmt::format(
      "CrossEntropyLoss: expected logits of shape [N, C] or [C] (or [N, C, d1, ...] with a Tensor target), got {}",
      input.shape().str()));
}

Tensor from_probabilities(const Tensor& input, const Tensor& t, const Logits& s, Reduction r) {
  const int64_t dim = s.single ? 0 : 1;
  Tensor l = -sum(log_softmax(input, dim) * t, {dim});  // [N], or [] for a single sample
  return reduce(l, r);
}

}  // namespace

namespace {

// Cross-entropy with class indices as one node, the reduction included: l_n = log sum_j e^(z_nj) -
// z_n,c_n with z_n = x_n - max_j x_nj (read at the index: a one-hot mask times log_softmax gave
// 0 * -inf = NaN for a logit of -inf in another class, the masking idiom, where PyTorch's gather
// gives a number), then their mean, sum, or the vector. One pass over the logits (the forward was
// five Tensor ops and a copy); the forward keeps softmax(x), so that the plain backward,
// dl/dx_n = s_n (softmax(x_n) - onehot_n) with s_n the reduction's factor (1/N for the mean), is one
// more pass without an exponential. Under create_graph the same rule is written with Tensor ops, so
// that it can be differentiated again.
struct IndexedLogits {
  std::vector<int64_t> target;
  int64_t n = 0, c = 0;
  bool single = false;
  Reduction reduction = Reduction::Mean;
  // softmax(x) of the forward that custom_op runs when the op records (its first call; gradcheck's
  // replays of the forward on other values do not change it). SavedTensor's version check makes a
  // backward throw if x was modified in place since.
  bool records = false;
  bool has_softmax = false;
  std::vector<double> softmax;
};

Shape loss_shape(const IndexedLogits& ce) {
  return ce.reduction == Reduction::None && !ce.single ? Shape{ce.n} : Shape{};
}

// The reduction's factor on row r's loss (and its gradient): 1/N for the mean.
double row_scale(const IndexedLogits& ce) {
  return ce.reduction == Reduction::Mean ? 1.0 / static_cast<double>(ce.n) : 1.0;
}

// The losses (reduced); softmax(x) into *softmax unless it is null.
template <class T>
Tensor indexed_forward(const IndexedLogits& ce, const Tensor& x, std::vector<double>* softmax) {
  const T* in = x.data<T>();
  if (softmax) softmax->resize(static_cast<size_t>(ce.n * ce.c));
  std::vector<double> rows(static_cast<size_t>(ce.n));
  for (int64_t r = 0; r < ce.n; ++r) {
    const T* row = in + r * ce.c;
    T top = row[0];  // NaN if any entry is, as max()
    for (int64_t j = 1; j < ce.c; ++j)
      if (std::isnan(row[j]) || row[j] > top) top = std::isnan(top) ? top : row[j];
    double total = 0.0;
    double* p = softmax ? softmax->data() + r * ce.c : nullptr;
    for (int64_t j = 0; j < ce.c; ++j) {
      const double e = std::exp(static_cast<T>(row[j] - top));
      total += e;
      if (p) p[j] = e;
    }
    if (p)
      for (int64_t j = 0; j < ce.c; ++j) p[j] /= total;
    // The sum is >= 1 (the maximum contributes e^0), so its log is finite.
    rows[static_cast<size_t>(r)] = std::log(total) - static_cast<double>(row[ce.target[static_cast<size_t>(r)]] - top);
  }
  if (ce.reduction == Reduction::None) return from_vector(rows, loss_shape(ce), x.dtype());
  double sum = 0.0;
  for (double l : rows) sum += l;
  return from_vector({sum * row_scale(ce)}, Shape{}, x.dtype());
}

template <class T>
Tensor indexed_backward(const IndexedLogits& ce, const Tensor& grad) {
  Tensor dx = zeros(ce.single ? Shape{ce.c} : Shape{ce.n, ce.c}, TensorOptions(grad.dtype()));
  T* out = dx.mutable_data<T>();
  const T* g = grad.data<T>();
  const double scale = row_scale(ce);
  for (int64_t r = 0; r < ce.n; ++r) {
    const double s = scale * static_cast<double>(g[ce.reduction == Reduction::None ? r : 0]);
    const double* p = ce.softmax.data() + r * ce.c;
    const int64_t k = ce.target[static_cast<size_t>(r)];
    for (int64_t j = 0; j < ce.c; ++j) out[r * ce.c + j] = static_cast<T>(s * (p[j] - (j == k ? 1.0 : 0.0)));
  }
  return dx;
}

}  // namespace

Tensor cross_entropy(const Tensor& input, const std::vector<int64_t>& target, const CrossEntropyLossOptions& options) {
  const Logits s = check_logits(input);
  if (static_cast<int64_t>(target.size()) != s.n)
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: input {} holds {} sample(s) but {} class indices were "
                                            "given",
                                            input.shape().str(), s.n, target.size()));
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t k = target[static_cast<size_t>(i)];
    if (k < 0 || k >= s.c)
      throw std::out_of_range(fmt::format("CrossEntropyLoss: class index {} (target {}) is out of range for {} "
                                          "classes (valid: 0 to {})",
                                          k, i, s.c, s.c - 1));
  }
  auto ce = std::make_shared<IndexedLogits>();
  ce->target = target;
  ce->n = s.n;
  ce->c = s.c;
  ce->single = s.single;
  ce->reduction = options.reduction();
  ce->records = GradMode::enabled() && input.requires_grad();
  return custom_op(
      "cross_entropy", {input},
      [ce](const std::vector<Tensor>& in) {
        std::vector<double>* keep = ce->records && !ce->has_softmax ? &ce->softmax : nullptr;
        Tensor l = in[0].dtype() == DType::float32 ? indexed_forward<float>(*ce, in[0], keep)
                                                   : indexed_forward<double>(*ce, in[0], keep);
        if (keep) ce->has_softmax = true;
        return l;
      },
      [ce](const Tensor& grad, const std::vector<Tensor>& in, const Tensor&) {
        if (!GradMode::enabled() && ce->has_softmax && grad.dtype() == in[0].dtype() &&
            grad.shape() == loss_shape(*ce))
          return std::vector<Tensor>{grad.dtype() == DType::float32 ? indexed_backward<float>(*ce, grad)
                                                                    : indexed_backward<double>(*ce, grad)};
        // Recorded (create_graph): the same rule as Tensor ops.
        std::vector<double> one_hot(static_cast<size_t>(ce->n * ce->c), 0.0);
        for (int64_t r = 0; r < ce->n; ++r) one_hot[static_cast<size_t>(r * ce->c + ce->target[static_cast<size_t>(r)])] = 1.0;
        const int64_t dim = ce->single ? 0 : 1;
        const Tensor mask = from_vector(one_hot, in[0].shape(), in[0].dtype());
        const Tensor g = ce->reduction == Reduction::None ? (ce->single ? grad : reshape(grad, {ce->n, 1}))
                                                          : grad * row_scale(*ce);
        return std::vector<Tensor>{(softmax(in[0], dim) - mask) * g};
      });
}

namespace {

// Logits [N, C, d1, ..., dK] (torch's K-dimensional form, e.g. [batch, classes, time]): the class
// dim moved last and every position made a row of [N * d1 * ... * dK, C], so Mean averages over
// every position, as torch's does. A class-index target has shape [N, d1, ..., dK], probabilities
// the input's; Reduction::None gives [N, d1, ..., dK].
Tensor cross_entropy_positions(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options) {
  const int64_t c = input.size(1);
  std::vector<int64_t> order{0}, positions{input.size(0)};
  for (int64_t d = 2; d < input.dim(); ++d) {
    order.push_back(d);
    positions.push_back(input.size(d));
  }
  order.push_back(1);
  int64_t rows = 1;
  for (int64_t p : positions) rows *= p;
  if (!target.defined()) throw std::invalid_argument("CrossEntropyLoss: the target is undefined");
  Tensor flat_target;
  if (target.shape() == input.shape()) flat_target = reshape(permute(target, order), {rows, c});
  else if (target.shape() == Shape(positions)) flat_target = reshape(target, {rows});
  else
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: for input {} (N, C, d1, ...) the target must be class "
                                            "indices of shape {} or probabilities of shape {}, got {}",
                                            input.shape().str(), Shape(positions).str(), input.shape().str(),
                                            target.shape().str()));
  const Tensor l = cross_entropy(reshape(permute(input, order), {rows, c}), flat_target, options);
  return options.reduction() == Reduction::None ? reshape(l, positions) : l;
}

}  // namespace

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options) {
  if (input.defined() && input.dim() >= 3) return cross_entropy_positions(input, target, options);
  const Logits s = check_logits(input);
  if (!target.defined()) throw std::invalid_argument("CrossEntropyLoss: the target is undefined");
  if (target.shape() == input.shape()) {
    if (target.dtype() != input.dtype())
      throw std::invalid_argument(fmt::format("CrossEntropyLoss: input is {} but the probability target is {}",
                                              dtype_name(input.dtype()), dtype_name(target.dtype())));
    return from_probabilities(input, target, s, options.reduction());  // differentiable in both, as PyTorch's
  }
  const bool indices_shape = s.single ? target.numel() == 1 && target.dim() <= 1
                                      : target.dim() == 1 && target.size(0) == s.n;
  if (!indices_shape)
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: for input {} the target must be class indices of shape "
                                            "{} or probabilities of shape {}, got {}",
                                            input.shape().str(), s.single ? "[]" : fmt::format("[{}]", s.n),
                                            input.shape().str(), target.shape().str()));
  std::vector<int64_t> idx;
  const std::vector<double> v = target.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::isfinite(v[i]) && v[i] == std::floor(v[i])))
      throw std::invalid_argument(fmt::format("CrossEntropyLoss: target {} is {}, not an integer class index", i, v[i]));
    // Past 2^62 the cast to int64_t could overflow (undefined); no class count comes near it.
    if (std::abs(v[i]) >= 0x1p62)
      throw std::out_of_range(fmt::format("CrossEntropyLoss: class index {} (target {}) is out of range for {} "
                                          "classes (valid: 0 to {})",
                                          v[i], i, s.c, s.c - 1));
    idx.push_back(static_cast<int64_t>(v[i]));
  }
  return cross_entropy(input, idx, options);
}

std::string CrossEntropyLoss::to_string() const {
  return fmt::format("CrossEntropyLoss(reduction={})", reduction_name(options_.reduction()));
}

}  // namespace chainrule::nn
