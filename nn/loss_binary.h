#pragma once
// Binary classification losses: probabilities (BCELoss) or logits (BCEWithLogitsLoss) against
// targets of the same shape and dtype (else std::invalid_argument naming the loss and both).
#include <string>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn {

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

}  // namespace chainrule::nn
