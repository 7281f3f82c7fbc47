#pragma once
// Activation layers: modules without parameters (but PReLU's slopes) whose forward is one autograd
// op or a short composition of them (no derivative is defined here; see autograd/ops.h for the rules).
//
//   Sigmoid:    y = 1 / (1 + e^-x)                     elementwise, any shape
//   Tanh:       y = tanh x                             elementwise, any shape
//   ReLU:       y = max(x, 0), relu'(0) = 0            elementwise, any shape
//   Softmax:    y_i = e^(x_i - m) / sum_j e^(x_j - m)  over `dim`, m = max_j x_j
//   LogSoftmax: y_i = x_i - m - ln sum_j e^(x_j - m)   over `dim`
//   LeakyReLU:  y = x where x > 0, else slope * x       y'(0) = y'(NaN) = slope (as PyTorch);
//               slope 0.01
//   ELU:        y = x where x > 0, else alpha (e^x - 1)  y'(0) = alpha (as PyTorch); alpha 1;
//               e^x - 1 as expm1, exact near 0 (PyTorch's exp(x) - 1 is not)
//   Softplus:   y = ln(1 + e^(beta x)) / beta, and x where beta x > threshold (PyTorch's
//               linear region; beta 1, threshold 20); computed without overflow for any x, with
//               log1p (to the last bits in the far tail, as PyTorch's); y'(NaN) = NaN
//   SiLU:       y = x sigmoid(x)                        (swish)
//   GELU:       y = x/2 (1 + erf(x / sqrt(2)))          exact (x Phi(x)), PyTorch's default
//               y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   with GeluApproximate::tanh
//   Hardtanh:   y = min(max(x, min_val), max_val)       y' = 1 strictly inside, 0 at and beyond
//               the bounds (as PyTorch); min_val -1, max_val 1
//   ReLU6:      y = min(max(x, 0), 6)                   Hardtanh(0, 6): y'(0) = y'(6) = 0
//   Hardsigmoid: y = min(max(x + 3, 0), 6) / 6          y' = 1/6 on (-3, 3), 0 at and beyond ±3
//   Hardswish:  y = x min(max(x + 3, 0), 6) / 6         y' = x/3 + 1/2 on [-3, 3), 0 below, 1 from 3
//               (PyTorch's: y'(-3) = -1/2, y'(3) = 1)
//   Mish:       y = x tanh(softplus(x))                 softplus with its threshold 20
//   SELU:       y = scale ELU(x, alpha)                 alpha 1.6732632423543772, scale
//               1.0507009873554805 (the paper's); y'(0) = scale alpha (as PyTorch)
//   CELU:       y = x where x > 0, else alpha (e^(x/alpha) - 1)    y'(0) = 1; alpha 1, != 0
//   PReLU:      y = x where x > 0, else a x             a learnable, one per channel (dim 1) or
//               one for all; y'(0) = a (as PyTorch)
//   Softsign:   y = x / (1 + |x|)
//   Tanhshrink: y = x - tanh x
//   LogSigmoid: y = ln sigmoid(x) = -softplus(-x)       no linear region: finite for any x
//   Softmin:    softmax(-x) over `dim`
//   Threshold:  y = x where x > threshold, else value   y' = 0 at threshold (as PyTorch)
//   GLU:        y = a sigmoid(b), a and b the halves of x along `dim` (-1)   [.., 2n, ..] -> [.., n, ..]
//   Hardshrink: y = x where |x| > lambd, else 0         y' = 0 at ±lambd; lambd 0.5
//   Softshrink: y = x - lambd where x > lambd, x + lambd where x < -lambd, else 0
//                                                       y' = 0 at ±lambd; lambd 0.5, >= 0
//
// Their conventions at the kinks are PyTorch's (1.13): each y' above "at" a point is what PyTorch's
// backward gives there, and tests/nn/activation_more_test.cpp checks them against LibTorch.
//
// The piecewise ones select their branches with where() (the gradient is selected, not masked)
// and give each branch an input on which it is finite, so a large |x| in the branch not taken
// makes no inf or NaN (e^1000 in ELU's negative branch at x = 1000). NaN passes through each. In
// the ones added after GELU it takes the branch PyTorch's kernel sends it to, so its gradient is
// PyTorch's too: the identity branch's through Hardtanh, ReLU6, Hardswish, SELU, CELU, Threshold
// and the shrinks, 0 through Hardsigmoid, the slope a through PReLU. (Softshrink's value at NaN is
// NaN; PyTorch 1.13's is 0.)
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

// The functional forms of the layers below (torch.nn.functional's names); the formulas are in the
// table above. Each throws std::invalid_argument naming it for an undefined input or a bad option.
//   hardtanh(x, -2, 2)   // min_val <= max_val
//   glu(tensor({{1.0, 2.0, 0.0, 100.0}}))  // [[0.5, 2.0]]: the first half gated by the second
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0);
Tensor relu6(const Tensor& x);
Tensor hardsigmoid(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor mish(const Tensor& x);
Tensor selu(const Tensor& x);
Tensor celu(const Tensor& x, double alpha = 1.0);  // alpha != 0
// weight: 0-d or 1-d, one element (for every element of x) or C, x's size along dim 1 (x at least
// 2-d), broadcast along dim 1 as torch's; its dtype is x's.
Tensor prelu(const Tensor& x, const Tensor& weight);
Tensor softsign(const Tensor& x);
Tensor tanhshrink(const Tensor& x);
Tensor logsigmoid(const Tensor& x);
// softmax(-x, dim): the same dims, 0-d inputs and std::out_of_range as softmax.
Tensor softmin(const Tensor& x, int64_t dim);
Tensor threshold(const Tensor& x, double threshold, double value);
// x's size along dim must be even; x at least 1-d.
Tensor glu(const Tensor& x, int64_t dim = -1);
Tensor hardshrink(const Tensor& x, double lambd = 0.5);
Tensor softshrink(const Tensor& x, double lambd = 0.5);  // lambd >= 0

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

class Hardtanh : public Module {
 public:
  // min_val < max_val, as torch's module (std::invalid_argument with both values).
  explicit Hardtanh(double min_val = -1.0, double max_val = 1.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "min_val=-1, max_val=1"

 private:
  double min_val_, max_val_;
};

class ReLU6 : public Module {
 public:
  ReLU6() : Module("ReLU6") {}
  Tensor forward(const Tensor& x) override;
};

class Hardsigmoid : public Module {
 public:
  Hardsigmoid() : Module("Hardsigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Hardswish : public Module {
 public:
  Hardswish() : Module("Hardswish") {}
  Tensor forward(const Tensor& x) override;
};

class Mish : public Module {
 public:
  Mish() : Module("Mish") {}
  Tensor forward(const Tensor& x) override;
};

class SELU : public Module {
 public:
  SELU() : Module("SELU") {}
  Tensor forward(const Tensor& x) override;
};

class CELU : public Module {
 public:
  // alpha != 0 (std::invalid_argument).
  explicit CELU(double alpha = 1.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "alpha=1"

 private:
  double alpha_;
};

// A learnable slope for the negative inputs: parameter "weight" of shape [num_parameters], every
// element `init`. num_parameters is 1 (one slope for all) or the input's channel count (its size
// along dim 1: PReLU(C) after a Conv2d(_, C)); num_parameters >= 1 (std::invalid_argument).
//   auto act = std::make_shared<nn::PReLU>(16);  // 16 slopes of 0.25, one per channel
class PReLU : public Module {
 public:
  explicit PReLU(int64_t num_parameters = 1, double init = 0.25, DType dtype = DType::float32);
  Tensor forward(const Tensor& x) override;  // x's dtype must be the weight's
  const Tensor& weight() const { return weight_; }
  std::string extra_repr() const override;  // "num_parameters=1" (and ", dtype=float64" when not float32)

 private:
  int64_t num_parameters_;
  Tensor weight_;
};

class Softsign : public Module {
 public:
  Softsign() : Module("Softsign") {}
  Tensor forward(const Tensor& x) override;
};

class Tanhshrink : public Module {
 public:
  Tanhshrink() : Module("Tanhshrink") {}
  Tensor forward(const Tensor& x) override;
};

class LogSigmoid : public Module {
 public:
  LogSigmoid() : Module("LogSigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Softmin : public Module {
 public:
  explicit Softmin(int64_t dim) : Module("Softmin"), dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  int64_t dim() const { return dim_; }
  std::string extra_repr() const override;  // "dim=1"

 private:
  int64_t dim_;
};

class Threshold : public Module {
 public:
  Threshold(double threshold, double value) : Module("Threshold"), threshold_(threshold), value_(value) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "threshold=0.1, value=20"

 private:
  double threshold_, value_;
};

class GLU : public Module {
 public:
  explicit GLU(int64_t dim = -1) : Module("GLU"), dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "dim=-1"

 private:
  int64_t dim_;
};

class Hardshrink : public Module {
 public:
  explicit Hardshrink(double lambd = 0.5) : Module("Hardshrink"), lambd_(lambd) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "0.5", as torch's

 private:
  double lambd_;
};

class Softshrink : public Module {
 public:
  // lambd >= 0 (std::invalid_argument with the value).
  explicit Softshrink(double lambd = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "0.5", as torch's

 private:
  double lambd_;
};

}  // namespace chainrule::nn
