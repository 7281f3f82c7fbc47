#pragma once
// Internal to the losses over class indices (nn/loss_nll.cpp, nn/loss_cross_entropy.cpp): checking
// the scores, the targets and the class weights, torch's K-dimensional form, and the weighted pick
// -w[t] x[t] that NLLLoss is and CrossEntropyLoss composes when it has a weight, an ignored target
// or label smoothing. The public API is nn/loss_classification.h.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn::detail {

// Scores [N, C], or [C] for one sample (single, n = 1); else std::invalid_argument naming op.
struct ClassScores {
  int64_t n, c;
  bool single;
};
ClassScores check_scores(const Tensor& input, const char* op);

// The class indices of a Tensor target: shape [N] ([] or [1] for one sample) and integer values (any
// float dtype). std::invalid_argument for another shape (naming the probabilities' shape too when
// with_probabilities) or a non-integer; std::out_of_range past 2^62 (named as given: the cast would
// be undefined). The range [0, C) is check_targets's.
std::vector<int64_t> tensor_indices(const Tensor& input, const ClassScores& s, const Tensor& target,
                                    bool with_probabilities, const char* op);

// Class indices with their weights, checked: one per sample, each in [0, c) or ignore_index.
struct ClassTargets {
  std::vector<int64_t> index;   // per sample
  std::vector<double> weight;   // per class; empty: every class weighs 1
  std::vector<int64_t> kept;    // the samples whose index is not ignore_index, in order
  double kept_weight = 0;       // sum of weight[index[r]] over the kept samples r
  int64_t n = 0, c = 0;
  bool single = false;
  double w(int64_t k) const { return weight.empty() ? 1.0 : weight[static_cast<size_t>(k)]; }
  bool ignores_any() const { return kept.size() != index.size(); }
};
// The values of class_weight: none when it is undefined, else it must be [c] in the input's dtype
// (std::invalid_argument naming op, its shape and dtype otherwise). Read as constants.
std::vector<double> class_weight_values(const Tensor& input, int64_t c, const Tensor& class_weight, const char* op);

// class_weight: undefined, or [c] in the input's dtype (std::invalid_argument naming op, its
// shape and dtype otherwise); its values are read once, as constants.
ClassTargets check_targets(const Tensor& input, const ClassScores& s, const std::vector<int64_t>& index,
                           const Tensor& class_weight, int64_t ignore_index, const char* op);

// Per-sample values over the kept samples (v [K]) reduced: None scatters them into [n] (0 for the
// ignored samples; [] for one sample), Sum adds them, Mean divides their sum by kept_weight (the
// weighted mean of torch's nll_loss; 0 / 0 = NaN when every target is ignored, as torch).
Tensor reduce_kept(const Tensor& v, const ClassTargets& t, Reduction r);

// -weight[t_r] * x[r, t_r] over the kept samples r of x [n, c] (log-probabilities): [K].
Tensor weighted_pick(const Tensor& x, const ClassTargets& t);

// Scores [N, C, d1, ..., dK] with a target of class indices [N, d1, ..., dK] or (with_probabilities)
// of the input's shape, as rows: the class dim moved last and every position made a row of
// [N * d1 * ... * dK, C] (an index error then names its position counted row-major).
struct PositionRows {
  Tensor input;               // [rows, C]
  Tensor target;              // [rows] (indices) or [rows, C] (probabilities)
  std::vector<int64_t> positions;  // [N, d1, ..., dK]: the shape of Reduction::None's result
};
PositionRows position_rows(const Tensor& input, const Tensor& target, bool with_probabilities, const char* op);

// f(rows, row targets) on position_rows's rows; Reduction::None's result reshaped to [N, d1, ...].
template <class F>
Tensor over_positions(const Tensor& input, const Tensor& target, bool with_probabilities, Reduction r, const char* op,
                      F f) {
  const PositionRows p = position_rows(input, target, with_probabilities, op);
  const Tensor l = f(p.input, p.target);
  return r == Reduction::None ? reshape(l, p.positions) : l;
}

// ", weight=[C], ignore_index=k" for the options that are not torch's defaults; "" otherwise.
std::string weight_and_ignore_text(const Tensor& weight, int64_t ignore_index);

}  // namespace chainrule::nn::detail
