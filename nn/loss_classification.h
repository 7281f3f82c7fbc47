#pragma once
// Multi-class losses over class scores: CrossEntropyLoss (logits).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn {

// ---- CrossEntropyLoss -------------------------------------------------------------------------
//
//   l_n = -log softmax(x_n)[c_n] = -x_n[c_n] + log sum_j e^(x_n[j])     (class index c_n)
//   l_n = -sum_j t_n[j] * log softmax(x_n)[j]                           (class probabilities t_n)
//   input x: logits [N, C] (or [C] for one sample); the target is either
//     * class indices: a std::vector<int64_t> of N entries, or a Tensor of shape [N] whose values
//       are integers (for [C] input: one index, shape [] or [1]); each in [0, C) else
//       std::out_of_range naming the index and C;
//     * class probabilities: a Tensor of the input's shape (rows summing to 1).
//   With a Tensor target the input may also be [N, C, d1, ..., dK] (torch's K-dimensional form,
//   e.g. [batch, classes, time]): class indices of shape [N, d1, ..., dK] or probabilities of the
//   input's shape; every position is a sample (Mean divides by N * d1 * ... * dK, None gives
//   [N, d1, ..., dK]), and an index error names its position counted row-major over them.
//   Mean divides by N. Computed through log_softmax (max subtracted), so logits of 1000 are fine.
//   With class indices the loss and its reduction are one graph node, "cross_entropy" (its plain
//   backward reads the softmax its forward kept); with probabilities, Tensor ops. The node saves
//   its input (create_graph differentiates through it), so changing the logits in place before
//   backward makes backward throw, where PyTorch's keeps only its own log-probabilities.
//
//   nn::CrossEntropyLoss ce;
//   Tensor loss = ce(logits, std::vector<int64_t>{0, 2, 1});   // logits [3, C]
struct CrossEntropyLossOptions {
  CrossEntropyLossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "CrossEntropyLossOptions"); return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_ = Reduction::Mean;
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
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {}) : options_(options) {}
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
  std::string to_string() const;  // "CrossEntropyLoss(reduction=mean)"

 private:
  CrossEntropyLossOptions options_;
};

}  // namespace chainrule::nn
