// CrossEntropyLoss: the fused node for class indices with the default options, and the compositions
// for weights, ignored targets, label smoothing and class probabilities.
#include "nn/loss_classification.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <utility>

#include "nn/activation.h"
#include "nn/loss_class_index.h"

namespace chainrule::nn {

using namespace detail;

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

namespace {

// The fused node's loss: the options are torch's defaults.
Tensor fused_cross_entropy(const Tensor& input, ClassTargets t, Reduction reduction) {
  auto ce = std::make_shared<IndexedLogits>();
  ce->target = std::move(t.index);
  ce->n = t.n;
  ce->c = t.c;
  ce->single = t.single;
  ce->reduction = reduction;
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

// torch's cross_entropy_loss_label_smoothing with nll_loss inside: log_softmax, the weighted pick,
// and eps / C times the weighted sum of every log-probability of each kept sample, both reduced by
// the same weighted mean.
Tensor composed_cross_entropy(const Tensor& input, const ClassTargets& t, const CrossEntropyLossOptions& options) {
  const Tensor logp = log_softmax(t.single ? reshape(input, {1, t.c}) : input, 1);
  const Tensor nll = reduce_kept(weighted_pick(logp, t), t, options.reduction());
  const double eps = options.label_smoothing();
  if (eps == 0.0) return nll;
  Tensor rows = index_select(logp, 0, t.kept);  // [K, C]
  if (!t.weight.empty()) rows = rows * from_vector(t.weight, {1, t.c}, TensorOptions(input.dtype()));
  const Tensor uniform = reduce_kept(-sum(rows, {1}), t, options.reduction());
  return nll * (1.0 - eps) + uniform * (eps / static_cast<double>(t.c));
}

// Class probabilities t (the input's shape, rows over dim): -sum_j w_j t'_j log softmax(x)_j with
// t' = (1 - eps) t + eps / C; Mean divides by the number of samples (not by the weights), as torch.
Tensor from_probabilities(const Tensor& input, const Tensor& target, const ClassScores& s,
                          const CrossEntropyLossOptions& options) {
  if (options.ignore_index() >= 0)
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: ignore_index ({}) applies to class indices only, not "
                                            "to the class probabilities of shape {} (leave it negative, as torch)",
                                            options.ignore_index(), target.shape().str()));
  const int64_t dim = s.single ? 0 : 1;
  const double eps = options.label_smoothing();
  Tensor t = eps == 0.0 ? target : target * (1.0 - eps) + eps / static_cast<double>(s.c);
  const Tensor& w = options.weight();
  if (w.defined()) {
    class_weight_values(input, s.c, w, "CrossEntropyLoss");
    t = t * (s.single ? w : reshape(w, {1, s.c}));
  }
  return reduce(-sum(log_softmax(input, dim) * t, {dim}), options.reduction());  // [N], or [] for a single sample
}

}  // namespace

CrossEntropyLossOptions& CrossEntropyLossOptions::label_smoothing(double eps) {
  if (!(eps >= 0.0 && eps <= 1.0))
    throw std::invalid_argument(
        fmt::format("CrossEntropyLossOptions::label_smoothing: must be in [0, 1], got {}", eps));
  label_smoothing_ = eps;
  return *this;
}

Tensor cross_entropy(const Tensor& input, const std::vector<int64_t>& target, const CrossEntropyLossOptions& options) {
  const ClassScores s = check_scores(input, "CrossEntropyLoss");
  ClassTargets t = check_targets(input, s, target, options.weight(), options.ignore_index(), "CrossEntropyLoss");
  // The default options keep the one fused node; the others compose Tensor ops.
  if (t.weight.empty() && !t.ignores_any() && options.label_smoothing() == 0.0)
    return fused_cross_entropy(input, std::move(t), options.reduction());
  return composed_cross_entropy(input, t, options);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options) {
  if (input.defined() && input.dim() >= 3)
    return over_positions(input, target, true, options.reduction(), "CrossEntropyLoss",
                          [&](const Tensor& x, const Tensor& t) { return cross_entropy(x, t, options); });
  const ClassScores s = check_scores(input, "CrossEntropyLoss");
  if (!target.defined()) throw std::invalid_argument("CrossEntropyLoss: the target is undefined");
  if (target.shape() == input.shape()) {
    if (target.dtype() != input.dtype())
      throw std::invalid_argument(fmt::format("CrossEntropyLoss: input is {} but the probability target is {}",
                                              dtype_name(input.dtype()), dtype_name(target.dtype())));
    return from_probabilities(input, target, s, options);  // differentiable in both, as PyTorch's
  }
  return cross_entropy(input, tensor_indices(input, s, target, true, "CrossEntropyLoss"), options);
}

std::string CrossEntropyLoss::to_string() const {
  return fmt::format("CrossEntropyLoss(reduction={}{}{})", reduction_name(options_.reduction()),
                     weight_and_ignore_text(options_.weight(), options_.ignore_index()),
                     options_.label_smoothing() == 0.0 ? ""
                                                       : fmt::format(", label_smoothing={}", options_.label_smoothing()));
}

}  // namespace chainrule::nn
