#include "nn/activation.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule::nn {

namespace {

// x minus its (detached) maximum along dim: every entry <= 0, the largest exactly 0.
Tensor shifted(const Tensor& x, int64_t dim, const char* op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  if (x.dim() == 0) throw std::invalid_argument(fmt::format("{}: the input is 0-d; need at least 1 dim", op));
  normalize_dim(dim, x.dim(), op);  // throws std::out_of_range naming op
  if (x.numel() == 0) return x;  // nothing to shift (and max over no elements would throw), as PyTorch
  return x - max(x, {dim}, true).detach();
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor e = exp(shifted(x, dim, "softmax"));
  return e / sum(e, {dim}, true);
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor z = shifted(x, dim, "log_softmax");
  // The sum is >= 1 (the maximum contributes e^0), so the log is finite.
  return z - log(sum(exp(z), {dim}, true));
}

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim_); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim_); }
std::string LogSoftmax::extra_repr() const { return fmt::format("dim={}", dim_); }

}  // namespace chainrule::nn
