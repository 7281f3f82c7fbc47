#pragma once
// Multi-class losses over class scores: CrossEntropyLoss (logits) and NLLLoss (log-probabilities),
// with torch's class weights, ignore_index and (cross entropy) label smoothing.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn {

// ---- CrossEntropyLoss -------------------------------------------------------------------------
//
//   l_n = -w[c_n] log softmax(x_n)[c_n]                         (class index c_n)
//   l_n = -sum_j w[j] t_n[j] log softmax(x_n)[j]                (class probabilities t_n)
//   w: the options' weight (one per class; all 1 when undefined).
//   input x: logits [N, C] (or [C] for one sample); the target is either
//     * class indices: a std::vector<int64_t> of N entries, or a Tensor of shape [N] whose values
//       are integers (for [C] input: one index, shape [] or [1]); each in [0, C) or equal to
//       ignore_index, else std::out_of_range naming the index and C;
//     * class probabilities: a Tensor of the input's shape (rows summing to 1).
//   With a Tensor target the input may also be [N, C, d1, ..., dK] (torch's K-dimensional form,
//   e.g. [batch, classes, time]): class indices of shape [N, d1, ..., dK] or probabilities of the
//   input's shape; every position is a sample (Mean divides by N * d1 * ... * dK, None gives
//   [N, d1, ..., dK]), and an index error names its position counted row-major over them.
//   Computed through log_softmax (max subtracted), so logits of 1000 are fine.
//
// Reductions, as torch.nn.CrossEntropyLoss:
//   class indices:       Mean = sum_n l_n / sum_n w[c_n], both over the samples whose c_n is not
//                        ignore_index (an ignored sample's l_n is 0, also under None); with every
//                        target ignored, Mean is 0 / 0 = NaN, as torch.
//   class probabilities: Mean = sum_n l_n / N (the weight does not enter the divisor). ignore_index
//                        does not apply; one >= 0 throws std::invalid_argument, as torch.
//
// Label smoothing eps in [0, 1] (torch's formula): the target mixes with the uniform distribution.
//   probabilities:  t_n -> (1 - eps) t_n + eps / C, then as above.
//   class indices:  l_n = (1 - eps) * (-w[c_n] log p_n[c_n]) + eps / C * (-sum_j w[j] log p_n[j])
//                   (p_n = softmax(x_n); 0 for ignored samples), and Mean divides both terms by
//                   the same sum_n w[c_n] as without smoothing.
//
// With class indices and the default options (no weight, no label smoothing, no target equal to
// ignore_index) the per-sample losses are one graph node, autograd's "softmax_cross_entropy" (its plain
// backward reads the softmax its forward kept), then the reduction: the fast path. The node saves its input (create_graph
// differentiates through it), so changing the logits in place before backward makes backward
// throw, where PyTorch's keeps only its own log-probabilities. With a weight, an ignored target or
// label smoothing the loss is composed of Tensor ops: log_softmax, then NLLLoss's pick.
// The weight is a constant: its values are read at each call, and no gradient reaches it.
//
//   nn::CrossEntropyLoss ce;
//   Tensor loss = ce(logits, std::vector<int64_t>{0, 2, 1});   // logits [3, C]
//   nn::CrossEntropyLoss smoothed(nn::CrossEntropyLossOptions().label_smoothing(0.1).ignore_index(0));
struct CrossEntropyLossOptions {
  CrossEntropyLossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "CrossEntropyLossOptions"); return *this; }
  // [C] in the logits' dtype (checked at the call); an undefined Tensor: every class weighs 1.
  CrossEntropyLossOptions& weight(Tensor w) { weight_ = std::move(w); return *this; }
  CrossEntropyLossOptions& ignore_index(int64_t i) { ignore_index_ = i; return *this; }
  // std::invalid_argument naming eps unless 0 <= eps <= 1.
  CrossEntropyLossOptions& label_smoothing(double eps);
  Reduction reduction() const { return reduction_; }
  const Tensor& weight() const { return weight_; }
  int64_t ignore_index() const { return ignore_index_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  Tensor weight_;
  int64_t ignore_index_ = -100;
  double label_smoothing_ = 0.0;
};

Tensor cross_entropy(const Tensor& input, const std::vector<int64_t>& target,
                     const CrossEntropyLossOptions& options = {});
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options = {});
// cross_entropy(logits, {2}) and cross_entropy(logits, {0, 2, 1}): a braced list is class indices.
inline Tensor cross_entropy(const Tensor& input, std::initializer_list<int64_t> target,
                            const CrossEntropyLossOptions& options = {}) {
  return cross_entropy(input, std::vector<int64_t>(target), options);
}

class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {}) : options_(std::move(options)) {}
  Tensor forward(const Tensor& input, const std::vector<int64_t>& target) const {
    return cross_entropy(input, target, options_);
  }
  Tensor forward(const Tensor& input, const Tensor& target) const { return cross_entropy(input, target, options_); }
  Tensor operator()(const Tensor& input, const std::vector<int64_t>& target) const { return forward(input, target); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  // ce(logits, {0, 2, 1}) and ce(logits, {1}): a braced list is always class indices.
  Tensor operator()(const Tensor& input, std::initializer_list<int64_t> target) const {
    return forward(input, std::vector<int64_t>(target));
  }
  const CrossEntropyLossOptions& options() const { return options_; }
  // "CrossEntropyLoss(reduction=mean)"; the other options when not their defaults, e.g.
  // "CrossEntropyLoss(reduction=sum, weight=[3], ignore_index=0, label_smoothing=0.1)".
  std::string to_string() const;

 private:
  CrossEntropyLossOptions options_;
};

// ---- NLLLoss ----------------------------------------------------------------------------------
//
//   l_n = -w[c_n] x_n[c_n]          (0 where c_n == ignore_index)
//   input x: log-probabilities (e.g. log_softmax's output) [N, C], or [C] for one sample, or, with
//   a Tensor target, [N, C, d1, ..., dK] (every position a sample, as CrossEntropyLoss); the target
//   is class indices as CrossEntropyLoss takes them (each in [0, C) or equal to ignore_index, else
//   std::out_of_range naming it and C). w: the options' weight, one per class (all 1 when
//   undefined; a constant, no gradient reaches it), in the input's dtype.
//   Mean = sum_n l_n / sum_n w[c_n] over the samples not ignored (torch's weighted mean; NaN when
//   every target is ignored); Sum = sum_n l_n; None = [N] ([] for one sample; [N, d1, ...]).
//   dl/dx_n[j] = -w[c_n] where j = c_n (times 1 / sum w for Mean), else 0.
// CrossEntropyLoss(x, c) = NLLLoss(log_softmax(x, 1), c) with the same weight and ignore_index.
//
//   nn::NLLLoss nll(nn::NLLLossOptions().weight(tensor({1.0, 2.0, 0.5})));
//   Tensor loss = nll(log_softmax(logits, 1), {2, 0, 1});   // logits [3, 3]
struct NLLLossOptions {
  NLLLossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "NLLLossOptions"); return *this; }
  NLLLossOptions& weight(Tensor w) { weight_ = std::move(w); return *this; }  // [C], as CrossEntropyLoss's
  NLLLossOptions& ignore_index(int64_t i) { ignore_index_ = i; return *this; }
  Reduction reduction() const { return reduction_; }
  const Tensor& weight() const { return weight_; }
  int64_t ignore_index() const { return ignore_index_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  Tensor weight_;
  int64_t ignore_index_ = -100;
};

Tensor nll_loss(const Tensor& input, const std::vector<int64_t>& target, const NLLLossOptions& options = {});
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options = {});
inline Tensor nll_loss(const Tensor& input, std::initializer_list<int64_t> target, const NLLLossOptions& options = {}) {
  return nll_loss(input, std::vector<int64_t>(target), options);
}

class NLLLoss {
 public:
  explicit NLLLoss(NLLLossOptions options = {}) : options_(std::move(options)) {}
  Tensor forward(const Tensor& input, const std::vector<int64_t>& target) const {
    return nll_loss(input, target, options_);
  }
  Tensor forward(const Tensor& input, const Tensor& target) const { return nll_loss(input, target, options_); }
  Tensor operator()(const Tensor& input, const std::vector<int64_t>& target) const { return forward(input, target); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  Tensor operator()(const Tensor& input, std::initializer_list<int64_t> target) const {
    return forward(input, std::vector<int64_t>(target));
  }
  const NLLLossOptions& options() const { return options_; }
  // "NLLLoss(reduction=mean)"; weight and ignore_index when not their defaults, as CrossEntropyLoss.
  std::string to_string() const;

 private:
  NLLLossOptions options_;
};

}  // namespace chainrule::nn
