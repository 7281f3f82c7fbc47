#pragma once
// Regression losses (MSELoss, L1Loss, SmoothL1Loss, HuberLoss): input and target of one shape (any) and one dtype, compared element by
// element; else std::invalid_argument naming the loss and both shapes (no silent broadcasting of
// [N, 1] against [N]) or both dtypes.
#include <string>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn {

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
// ---- L1Loss -----------------------------------------------------------------------------------
//
//   l_i = |x_i - y_i|                                  (torch.nn.L1Loss; Mean divides by the
//   dl/dx_i = sign(x_i - y_i), 0 at x_i = y_i           number of elements)
// At the kink (x_i = y_i) the gradient is 0, as torch's sign(0) = 0.
//
//   nn::L1Loss l1;
//   Tensor loss = l1(tensor({0.5, 2.0}), tensor({1.0, 2.0}));   // (0.5 + 0) / 2 = 0.25
struct L1LossOptions {
  L1LossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "L1LossOptions"); return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_ = Reduction::Mean;
};

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossOptions& options = {});

class L1Loss {
 public:
  explicit L1Loss(L1LossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return l1_loss(input, target, options_); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const L1LossOptions& options() const { return options_; }
  std::string to_string() const;  // "L1Loss(reduction=mean)"

 private:
  L1LossOptions options_;
};

// ---- SmoothL1Loss -----------------------------------------------------------------------------
//
//   with d_i = x_i - y_i:
//   l_i = 0.5 d_i^2 / beta     if |d_i| < beta          dl/dx_i = d_i / beta
//         |d_i| - 0.5 beta     otherwise                dl/dx_i = sign(d_i)
//   beta >= 0, default 1 (torch.nn.SmoothL1Loss); beta < 0 throws std::invalid_argument naming it.
//   beta = 0 is L1Loss exactly (as torch, which then calls l1_loss), gradient 0 at d_i = 0.
// The joint |d_i| = beta belongs to the linear branch, as torch's `|d| < beta` test: the value and
// the first derivative (+-1) agree there, the second derivative is 0 (the quadratic's is 1/beta),
// as torch's double backward.
//
//   nn::SmoothL1Loss loss(nn::SmoothL1LossOptions().beta(0.5));
//   loss(tensor({0.2, 3.0}), tensor({0.0, 0.0}));   // (0.5 * 0.04 / 0.5 + (3 - 0.25)) / 2 = 1.395
struct SmoothL1LossOptions {
  SmoothL1LossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "SmoothL1LossOptions"); return *this; }
  SmoothL1LossOptions& beta(double b);  // std::invalid_argument for b < 0 or NaN, naming b
  Reduction reduction() const { return reduction_; }
  double beta() const { return beta_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  double beta_ = 1.0;
};

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& options = {});

class SmoothL1Loss {
 public:
  explicit SmoothL1Loss(SmoothL1LossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return smooth_l1_loss(input, target, options_); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const SmoothL1LossOptions& options() const { return options_; }
  std::string to_string() const;  // "SmoothL1Loss(reduction=mean, beta=1)"

 private:
  SmoothL1LossOptions options_;
};

// ---- HuberLoss --------------------------------------------------------------------------------
//
//   with d_i = x_i - y_i:
//   l_i = 0.5 d_i^2                      if |d_i| < delta    dl/dx_i = d_i
//         delta (|d_i| - 0.5 delta)      otherwise           dl/dx_i = delta sign(d_i)
//   delta > 0, default 1 (torch.nn.HuberLoss); delta <= 0 throws std::invalid_argument naming it.
//   HuberLoss(delta) = delta * SmoothL1Loss(beta = delta); with delta = 1 the two are equal.
// The joint |d_i| = delta belongs to the linear branch, as torch's `|d| < delta` test (value and
// first derivative agree; second derivative 0 there).
//
//   nn::HuberLoss loss(nn::HuberLossOptions().delta(2.0));
//   loss(tensor({1.0, -5.0}), tensor({0.0, 0.0}));   // (0.5 + 2 * (5 - 1)) / 2 = 4.25
struct HuberLossOptions {
  HuberLossOptions& reduction(Reduction r) { reduction_ = checked_reduction(r, "HuberLossOptions"); return *this; }
  HuberLossOptions& delta(double d);  // std::invalid_argument for d <= 0 or NaN, naming d
  Reduction reduction() const { return reduction_; }
  double delta() const { return delta_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  double delta_ = 1.0;
};

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& options = {});

class HuberLoss {
 public:
  explicit HuberLoss(HuberLossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return huber_loss(input, target, options_); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const HuberLossOptions& options() const { return options_; }
  std::string to_string() const;  // "HuberLoss(reduction=mean, delta=1)"

 private:
  HuberLossOptions options_;
};

}  // namespace chainrule::nn
