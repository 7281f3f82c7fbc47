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

namespace {

void check_input(const Tensor& x, const char* op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
}

// 1 where x > above or x is NaN (so NaN takes the identity branch and stays NaN), else 0; not
// recorded.
Tensor positive(const Tensor& x, double above = 0) {
  NoGradGuard no_grad;
  return step(above == 0 ? x : x - above);
}

}  // namespace

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check_input(x, "leaky_relu");
  return where(positive(x), x, x * negative_slope);
}

Tensor elu(const Tensor& x, double alpha) {
  check_input(x, "elu");
  const Tensor pos = positive(x);
  const Tensor negative_part = where(pos, Tensor(0.0), x);  // <= 0: e^x never overflows
  return where(pos, x, (exp(negative_part) - 1.0) * alpha);
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  check_input(x, "softplus");
  if (!(beta > 0)) throw std::invalid_argument(fmt::format("softplus: beta must be > 0, got {}", beta));
  const Tensor z = x * beta;
  // ln(1 + e^z) = z + ln(1 + e^-z) for z > 0, so each branch takes e^ of a number <= 0.
  const Tensor pos = positive(z);
  const Tensor zp = where(pos, z, Tensor(0.0)), zn = where(pos, Tensor(0.0), z);
  const Tensor soft = where(pos, zp + log(exp(-zp) + 1.0), log(exp(zn) + 1.0)) / beta;
  return where(positive(z, threshold), x, soft);
}

Tensor silu(const Tensor& x) {
  check_input(x, "silu");
  return x * sigmoid(x);
}

Tensor gelu(const Tensor& x, GeluApproximate approximate) {
  check_input(x, "gelu");
  if (approximate == GeluApproximate::none) return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0);  // 1 / sqrt(2)
  const double k = 0.7978845608028654;  // sqrt(2 / pi)
  return x * 0.5 * (tanh((x + x * x * x * 0.044715) * k) + 1.0);
}

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim_); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim_); }
std::string LogSoftmax::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }
std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", negative_slope_); }

Tensor ELU::forward(const Tensor& x) { return elu(x, alpha_); }
std::string ELU::extra_repr() const { return fmt::format("alpha={}", alpha_); }

Softplus::Softplus(double beta, double threshold) : Module("Softplus"), beta_(beta), threshold_(threshold) {
  if (!(beta > 0)) throw std::invalid_argument(fmt::format("Softplus: beta must be > 0, got {}", beta));
}
Tensor Softplus::forward(const Tensor& x) { return softplus(x, beta_, threshold_); }
std::string Softplus::extra_repr() const { return fmt::format("beta={}, threshold={}", beta_, threshold_); }

Tensor SiLU::forward(const Tensor& x) { return silu(x); }

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }
std::string GELU::extra_repr() const {
  return approximate_ == GeluApproximate::none ? "approximate='none'" : "approximate='tanh'";
}

}  // namespace chainrule::nn
