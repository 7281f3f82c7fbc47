#pragma once
// Activation layers: modules without parameters whose forward is one autograd op or a short
// composition of them (no derivative is defined here; see autograd/ops.h for the rules).
//
//   Sigmoid:    y = 1 / (1 + e^-x)                     elementwise, any shape
//   Tanh:       y = tanh x                             elementwise, any shape
//   ReLU:       y = max(x, 0), relu'(0) = 0            elementwise, any shape
//   Softmax:    y_i = e^(x_i - m) / sum_j e^(x_j - m)  over `dim`, m = max_j x_j
//   LogSoftmax: y_i = x_i - m - ln sum_j e^(x_j - m)   over `dim`
//   LeakyReLU:  y = x where x > 0, else slope * x       y'(0) = slope (as PyTorch); slope 0.01
//   ELU:        y = x where x > 0, else alpha (e^x - 1)  y'(0) = alpha (as PyTorch); alpha 1
//   Softplus:   y = ln(1 + e^(beta x)) / beta, and x where beta x > threshold (PyTorch's
//               linear region; beta 1, threshold 20); computed without overflow for any x
//   SiLU:       y = x sigmoid(x)                        (swish)
//   GELU:       y = x/2 (1 + erf(x / sqrt(2)))          exact (x Phi(x)), PyTorch's default
//               y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   with GeluApproximate::tanh
//
// The piecewise ones select their branches with where() (the gradient is selected, not masked)
// and give each branch an input on which it is finite, so a large |x| in the branch not taken
// makes no inf or NaN (e^1000 in ELU's negative branch at x = 1000). NaN passes through each.
//
// Softmax and LogSoftmax subtract the maximum along `dim` first, so e^(...) <= 1 never overflows
// (logits 1000 and 1001 give 0.269 and 0.731). The maximum is detached: softmax(x - c) = softmax(x)
// for any constant c, so its gradient contribution is exactly zero and need not be recorded.
//
//   auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)),
//                                                 std::make_shared<nn::Sigmoid>());
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace chainrule::nn {

// Softmax of x over `dim` (negative dims count from the end); same shape as x. A 0-d x is one
// element along dim 0 or -1 (as PyTorch): softmax 1, log_softmax 0.
//   softmax(tensor({{1000.0, 1001.0}}), 1)  // [[0.2689, 0.7311]]
Tensor softmax(const Tensor& x, int64_t dim);
// log(softmax(x)) over `dim`, computed without forming softmax (no log of 0 for very negative
// logits); same shape as x.
Tensor log_softmax(const Tensor& x, int64_t dim);

Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);  // beta > 0
Tensor silu(const Tensor& x);
// GELU's form, as torch's `approximate`: "none" (the exact form, with erf) or "tanh".
enum class GeluApproximate { none, tanh };
Tensor gelu(const Tensor& x, GeluApproximate approximate = GeluApproximate::none);

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class Softmax : public Module {
 public:
  // `dim` is the axis that sums to 1 (e.g. 1 for logits of shape [N, C]); checked at forward.
  explicit Softmax(int64_t dim) : Module("Softmax"), dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  int64_t dim() const { return dim_; }
  std::string extra_repr() const override;  // "dim=1"

 private:
  int64_t dim_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : Module("LogSoftmax"), dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  int64_t dim() const { return dim_; }
  std::string extra_repr() const override;  // "dim=1"

 private:
  int64_t dim_;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "negative_slope=0.01"

 private:
  double negative_slope_;
};

class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0) : Module("ELU"), alpha_(alpha) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "alpha=1"

 private:
  double alpha_;
};

class Softplus : public Module {
 public:
  // beta > 0 (std::invalid_argument with the value).
  explicit Softplus(double beta = 1.0, double threshold = 20.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "beta=1, threshold=20"

 private:
  double beta_, threshold_;
};

class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override;
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximate approximate = GeluApproximate::none) : Module("GELU"), approximate_(approximate) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "approximate='none'" or "approximate='tanh'"

 private:
  GeluApproximate approximate_;
};

}  // namespace chainrule::nn
