#include "nn/activation.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule::nn {

namespace {

// x minus its (detached) maximum along dim: every entry <= 0, the largest exactly 0.
Tensor shifted(const Tensor& x, int64_t dim, const char* op) {
  normalize_dim(dim, x.dim(), op);  // throws std::out_of_range naming op
  if (x.numel() == 0) return x;  // nothing to shift (and max over no elements would throw), as PyTorch
  return x - max(x, {dim}, true).detach();
}

// A 0-d input is one element along its one implicit dim (dim 0 or -1), as PyTorch: the op runs on
// it as shape [1] and gives a 0-d result.
template <class Op>
Tensor along(const Tensor& x, int64_t dim, const char* name, Op op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", name));
  if (x.dim() > 0) return op(x, dim);
  normalize_dim(dim, 1, name);
  return reshape(op(reshape(x, {1}), 0), {});
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return along(x, dim, "softmax", [](const Tensor& v, int64_t d) {
    Tensor e = exp(shifted(v, d, "softmax"));
    return e / sum(e, {d}, true);
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  return along(x, dim, "log_softmax", [](const Tensor& v, int64_t d) {
    Tensor z = shifted(v, d, "log_softmax");
    // The sum is >= 1 (the maximum contributes e^0), so the log is finite.
    return z - log(sum(exp(z), {d}, true));
  });
}

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim_); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim_); }
std::string LogSoftmax::extra_repr() const { return fmt::format("dim={}", dim_); }

}  // namespace chainrule::nn
