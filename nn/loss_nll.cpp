// NLLLoss, and what it shares with CrossEntropyLoss over class indices (nn/loss_class_index.h).
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "nn/loss_class_index.h"
#include "nn/loss_classification.h"

namespace chainrule::nn {

namespace detail {

ClassScores check_scores(const Tensor& input, const char* op) {
  if (!input.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  if (input.dim() == 2) return {input.size(0), input.size(1), false};
  if (input.dim() == 1) return {1, input.size(0), true};
  throw std::invalid_argument(fmt::format(
      "{}: expected scores of shape [N, C] or [C] (or [N, C, d1, ...] with a Tensor target), got {}", op,
      input.shape().str()));
}

namespace {

std::string index_range_error(const char* op, double k, size_t at, int64_t c, int64_t ignore_index) {
  return fmt::format("{}: class index {} (target {}) is out of range for {} classes (valid: 0 to {}, or the "
                     "ignore_index {})",
                     op, k, at, c, c - 1, ignore_index);
}

}  // namespace

std::vector<int64_t> tensor_indices(const Tensor& input, const ClassScores& s, const Tensor& target,
                                    bool with_probabilities, const char* op) {
  if (!target.defined()) throw std::invalid_argument(fmt::format("{}: the target is undefined", op));
  const bool indices_shape = s.single ? target.numel() == 1 && target.dim() <= 1
                                      : target.dim() == 1 && target.size(0) == s.n;
  if (!indices_shape)
    throw std::invalid_argument(fmt::format("{}: for input {} the target must be class indices of shape {}{}, got {}",
                                            op, input.shape().str(), s.single ? "[]" : fmt::format("[{}]", s.n),
                                            with_probabilities ? fmt::format(" or probabilities of shape {}",
                                                                             input.shape().str())
                                                               : "",
                                            target.shape().str()));
  std::vector<int64_t> idx;
  const std::vector<double> v = target.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::isfinite(v[i]) && v[i] == std::floor(v[i])))
      throw std::invalid_argument(fmt::format("{}: target {} is {}, not an integer class index", op, i, v[i]));
    // Past 2^62 the cast to int64_t could overflow (undefined); no class count comes near it.
    if (std::abs(v[i]) >= 0x1p62)
      throw std::out_of_range(fmt::format("{}: class index {} (target {}) is out of range for {} classes (valid: 0 "
                                          "to {})",
                                          op, v[i], i, s.c, s.c - 1));
    idx.push_back(static_cast<int64_t>(v[i]));
  }
  return idx;
}

std::vector<double> class_weight_values(const Tensor& input, int64_t c, const Tensor& class_weight, const char* op) {
  if (!class_weight.defined()) return {};
  if (!(class_weight.shape() == Shape{c}) || class_weight.dtype() != input.dtype())
    throw std::invalid_argument(fmt::format("{}: the weight must hold one value per class, shape [{}] in the input's "
                                            "dtype {} (input {}), got {} {}",
                                            op, c, dtype_name(input.dtype()), input.shape().str(),
                                            class_weight.shape().str(), dtype_name(class_weight.dtype())));
  return class_weight.to_vector();
}

ClassTargets check_targets(const Tensor& input, const ClassScores& s, const std::vector<int64_t>& index,
                           const Tensor& class_weight, int64_t ignore_index, const char* op) {
  if (static_cast<int64_t>(index.size()) != s.n)
    throw std::invalid_argument(fmt::format("{}: input {} holds {} sample(s) but {} class indices were given", op,
                                            input.shape().str(), s.n, index.size()));
  ClassTargets t;
  t.n = s.n;
  t.c = s.c;
  t.single = s.single;
  t.index = index;
  t.weight = class_weight_values(input, s.c, class_weight, op);
  t.kept.reserve(index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    const int64_t k = index[i];
    if (k == ignore_index) continue;
    if (k < 0 || k >= s.c)
      throw std::out_of_range(index_range_error(op, static_cast<double>(k), i, s.c, ignore_index));
    t.kept.push_back(static_cast<int64_t>(i));
    t.kept_weight += t.w(k);
  }
  return t;
}

Tensor reduce_kept(const Tensor& v, const ClassTargets& t, Reduction r) {
  switch (r) {
    case Reduction::None: {
      // Scattered, not masked: an ignored sample's value may be inf (a log-probability of -inf),
      // and 0 * inf is NaN where torch gives 0.
      const Tensor all = index_add(zeros({t.n}, TensorOptions(v.dtype())), 0, t.kept, v);
      return t.single ? reshape(all, {}) : all;
    }
    case Reduction::Sum: return sum(v);
    case Reduction::Mean: return sum(v) / t.kept_weight;
  }
  return v;
}

Tensor weighted_pick(const Tensor& x, const ClassTargets& t) {
  std::vector<int64_t> at;
  std::vector<double> coefficient;
  for (int64_t r : t.kept) {
    const int64_t k = t.index[static_cast<size_t>(r)];
    at.push_back(r * t.c + k);
    coefficient.push_back(-t.w(k));
  }
  const int64_t kept = static_cast<int64_t>(at.size());
  return index_select(reshape(x, {t.n * t.c}), 0, at) * from_vector(coefficient, {kept}, TensorOptions(x.dtype()));
}

PositionRows position_rows(const Tensor& input, const Tensor& target, bool with_probabilities, const char* op) {
  const int64_t c = input.size(1);
  std::vector<int64_t> order{0}, positions{input.size(0)};
  for (int64_t d = 2; d < input.dim(); ++d) {
    order.push_back(d);
    positions.push_back(input.size(d));
  }
  order.push_back(1);
  int64_t rows = 1;
  for (int64_t p : positions) rows *= p;
  if (!target.defined()) throw std::invalid_argument(fmt::format("{}: the target is undefined", op));
  PositionRows out;
  out.input = reshape(permute(input, order), {rows, c});
  out.positions = positions;
  if (with_probabilities && target.shape() == input.shape()) out.target = reshape(permute(target, order), {rows, c});
  else if (target.shape() == Shape(positions)) out.target = reshape(target, {rows});
  else
    throw std::invalid_argument(fmt::format("{}: for input {} (N, C, d1, ...) the target must be class indices of "
                                            "shape {}{}, got {}",
                                            op, input.shape().str(), Shape(positions).str(),
                                            with_probabilities ? fmt::format(" or probabilities of shape {}",
                                                                             input.shape().str())
                                                               : "",
                                            target.shape().str()));
  return out;
}

std::string weight_and_ignore_text(const Tensor& weight, int64_t ignore_index) {
  std::string s;
  if (weight.defined()) s += fmt::format(", weight={}", weight.shape().str());
  if (ignore_index != -100) s += fmt::format(", ignore_index={}", ignore_index);
  return s;
}

}  // namespace detail

using namespace detail;

Tensor nll_loss(const Tensor& input, const std::vector<int64_t>& target, const NLLLossOptions& options) {
  const ClassScores s = check_scores(input, "NLLLoss");
  const ClassTargets t = check_targets(input, s, target, options.weight(), options.ignore_index(), "NLLLoss");
  return reduce_kept(weighted_pick(input, t), t, options.reduction());
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options) {
  if (input.defined() && input.dim() >= 3)
    return over_positions(input, target, false, options.reduction(), "NLLLoss",
                          [&](const Tensor& x, const Tensor& t) { return nll_loss(x, t, options); });
  const ClassScores s = check_scores(input, "NLLLoss");
  return nll_loss(input, tensor_indices(input, s, target, false, "NLLLoss"), options);
}

std::string NLLLoss::to_string() const {
  return fmt::format("NLLLoss(reduction={}{})", reduction_name(options_.reduction()),
                     weight_and_ignore_text(options_.weight(), options_.ignore_index()));
}

}  // namespace chainrule::nn
