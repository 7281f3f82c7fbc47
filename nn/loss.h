#pragma once
// Loss functions, composed from autograd ops (no derivative is defined here). Each comes as an
// options struct, a class with forward(input, target) (as torch.nn.MSELoss, ...) and a free
// function (as torch.nn.functional.mse_loss). Caller mistakes throw: shapes that differ
// (std::invalid_argument, both shapes named; no silent broadcasting of [N, 1] against [N]), dtypes
// that differ, class indices out of range (std::out_of_range).
//
// Reduction over the per-element (or per-sample) losses l:
//   None: l itself        Mean: sum(l) / count        Sum: sum(l)
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace chainrule::nn {

enum class Reduction { None, Mean, Sum };
const char* reduction_name(Reduction r);  // "none", "mean", "sum"
// r itself; std::invalid_argument naming `options` and the value when r is none of the three
// (a cast from an integer).
Reduction checked_reduction(Reduction r, const char* options);

// ---- MSELoss ----------------------------------------------------------------------------------
//
//   l_i = k * (y_hat_i - y_i)^2,   k = 1/2 with half(true), else 1 (torch.nn.MSELoss: k = 1)
//   input, target: the same shape (any); Mean divides by the number of elements.
//
// The lecture's two costs (2-3-1 network, N observations, one output each: input [N, 1]):
//   * the cost it defines and reports,  C = 1/N * sum_i 1/2 (y_hat_i - y_i)^2
//       = MSELoss(MSELossOptions().reduction(Reduction::Mean).half(true))
//   * the cost its weight updates descend: the slides add up the backprop errors of all N
//     observations (w -= lr * sum_i bpe_i * a_i), which is the gradient of 1/2 * sum_i (y_hat_i - y_i)^2,
//       = MSELoss(MSELossOptions().reduction(Reduction::Sum).half(true))
//     With this one, SGD(lr = 0.5) reproduces the slides' updates (H1->ON: -0.6 -> -0.608 after
//     the first observation). The two differ by the factor N in the gradient.
//   The 1/2 "simplifies the math": d/dy_hat 1/2 (y_hat - y)^2 = y_hat - y, the slides' "error".
//   Reduction::None with half(true) gives the slides' per-observation cost column.
struct MSELossOptions {
  MSELossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "MSELossOptions"); return *this; }
  MSELossOptions& half(bool on) { half_ = on; return *this; }
  Reduction reduction() const { return reduction_; }
  bool half() const { return half_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  bool half_ = false;
};

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossOptions& options = {});

class MSELoss {
 public:
  explicit MSELoss(MSELossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return mse_loss(input, target, options_); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const MSELossOptions& options() const { return options_; }
  std::string to_string() const;  // "MSELoss(reduction=sum, half=true)"

 private:
  MSELossOptions options_;
};

// ---- BCELoss ----------------------------------------------------------------------------------
//
//   l_i = -(y_i * log(p_i) + (1 - y_i) * log(1 - p_i))
//   input p: probabilities in [0, 1] (e.g. a Sigmoid's output; else std::invalid_argument naming the
//   first bad value); target y: same shape, usually 0 or 1.
//
// As torch.nn.BCELoss, each log is clamped to >= -100, so p = 0 or 1 gives a finite loss (100 per
// element) instead of inf. In the clamped region (p <= e^-100; in float32, p at or below the
// smallest normal float 1.2e-38) the log is the constant -100 and passes no gradient, as a clamp
// at its bound; PyTorch's fused backward instead returns (p - y) / max(p (1 - p), 1e-12) there.
// Outside it the gradient is the exact -y/p + (1 - y)/(1 - p), which PyTorch's 1e-12 caps: at
// p = 1e-16, y = 1 it is -1e16 here and -1e12 there, and in float32 near 1e-38 it is close to the
// float range, so an upstream gradient above a few units overflows to -inf. For saturating
// logits prefer BCEWithLogitsLoss, which never leaves the smooth region.
struct BCELossOptions {
  BCELossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "BCELossOptions"); return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_ = Reduction::Mean;
};

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCELossOptions& options = {});

class BCELoss {
 public:
  explicit BCELoss(BCELossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const {
    return binary_cross_entropy(input, target, options_);
  }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const BCELossOptions& options() const { return options_; }
  std::string to_string() const;  // "BCELoss(reduction=mean)"

 private:
  BCELossOptions options_;
};

// ---- BCEWithLogitsLoss ------------------------------------------------------------------------
//
//   l_i = -(y_i * log(sigmoid(z_i)) + (1 - y_i) * log(1 - sigmoid(z_i)))
//       = max(z_i, 0) - z_i * y_i + log(1 + e^-|z_i|)      (the stable form; no clamp needed)
//   dl/dz_i = sigmoid(z_i) - y_i, exact everywhere (z = 0 included)
//   input z: logits, any real; target y: same shape.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BCELossOptions& options = {});

class BCEWithLogitsLoss {
 public:
  explicit BCEWithLogitsLoss(BCELossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const {
    return binary_cross_entropy_with_logits(input, target, options_);
  }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  std::string to_string() const;  // "BCEWithLogitsLoss(reduction=mean)"

 private:
  BCELossOptions options_;
};

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
