// CrossEntropyLoss: autograd's fused node for class indices with the default options, and the compositions
// for weights, ignored targets, label smoothing and class probabilities.
#include "nn/loss_classification.h"

#include <fmt/format.h>

#include <stdexcept>

#include "nn/activation.h"
#include "nn/loss_class_index.h"

namespace chainrule::nn {

using namespace detail;

namespace {

// The default options: the fused node of autograd (softmax_cross_entropy, its rule in
// autograd/tensor_cross_entropy.cpp) and the reduction.
Tensor fused_cross_entropy(const Tensor& input, const ClassTargets& t, Reduction reduction) {
  return reduce(softmax_cross_entropy(input, t.index), reduction);
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
  const ClassTargets t = check_targets(input, s, target, options.weight(), options.ignore_index(), "CrossEntropyLoss");
  // The default options keep the one fused node; the others compose Tensor ops.
  if (t.weight.empty() && !t.ignores_any() && options.label_smoothing() == 0.0)
    return fused_cross_entropy(input, t, options.reduction());
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
