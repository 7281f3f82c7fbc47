#pragma once
// Regression losses: input and target of one shape (any) and one dtype, compared element by
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
}  // namespace chainrule::nn
