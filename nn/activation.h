#pragma once
// Activation layers: modules without parameters whose forward is one autograd op or a short
// composition of them (no derivative is defined here; see autograd/ops.h for the rules).
//
//   Sigmoid:    y = 1 / (1 + e^-x)                     elementwise, any shape
//   Tanh:       y = tanh x                             elementwise, any shape
//   ReLU:       y = max(x, 0), relu'(0) = 0            elementwise, any shape
//   Softmax:    y_i = e^(x_i - m) / sum_j e^(x_j - m)  over `dim`, m = max_j x_j
//   LogSoftmax: y_i = x_i - m - ln sum_j e^(x_j - m)   over `dim`
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

}  // namespace chainrule::nn
