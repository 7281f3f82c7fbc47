#include "nn/activation.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

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

// 1 where x < below or x is NaN, else 0; not recorded.
Tensor negative(const Tensor& x, double below) {
  NoGradGuard no_grad;
  return step(Tensor(below) - x);
}

// The mask without x's NaNs: for PyTorch's kernels that test `x > t` (false for NaN) where the
// masks above test `!(x <= t)`. Not recorded.
Tensor except_nan(const Tensor& mask, const Tensor& x) {
  NoGradGuard no_grad;
  return mask - isnan(x);
}

// PyTorch's elu kernel with its scale and input_scale (ELU, SELU and CELU): scale x where x > 0
// (or NaN), else alpha scale (e^(input_scale x) - 1). The gradient at 0 is the negative branch's,
// alpha scale input_scale, as PyTorch's. The negative branch sees min(x, 0), so for input_scale > 0
// its e^ never overflows. Factors of 1 are not recorded (ELU's graph is x, exp and two ops).
Tensor exponential_linear(const Tensor& x, double alpha, double scale = 1.0, double input_scale = 1.0) {
  const Tensor pos = positive(x);
  const Tensor negative_part = where(pos, Tensor(0.0), x);
  // e^z - 1 as expm1: exact near 0, where PyTorch's exp(z) - 1 cancels (elu(-1e-10) is
  // -1.0000000827e-10 there; the values agree to 1e-16 elsewhere).
  const Tensor e = expm1(input_scale == 1.0 ? negative_part : negative_part * input_scale);
  return where(pos, scale == 1.0 ? x : x * scale, e * (alpha * scale));
}

}  // namespace

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check_input(x, "leaky_relu");
  // PyTorch's `x > 0 ? x : slope x`: a NaN takes the slope's branch (its gradient is the slope).
  return where(except_nan(positive(x), x), x, x * negative_slope);
}

Tensor elu(const Tensor& x, double alpha) {
  check_input(x, "elu");
  return exponential_linear(x, alpha);
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  check_input(x, "softplus");
  if (!(beta > 0)) throw std::invalid_argument(fmt::format("softplus: beta must be > 0, got {}", beta));
  const Tensor z = x * beta;
  // ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|), and -|z| = min(z, 0) - max(z, 0): one e^, of a
  // number <= 0, and log1p keeps e^z where it is tiny (softplus(-30) = 9.36e-14 to the last bits,
  // as PyTorch's; ln(1 + e^z) would round 1 + e^z).
  const Tensor pos = positive(z);
  const Tensor zp = where(pos, z, Tensor(0.0)), zn = where(pos, Tensor(0.0), z);
  const Tensor soft = (zp + log1p(exp(zn - zp))) / beta;
  // PyTorch's `z > threshold ? x : ...`: a NaN takes the soft branch, so its gradient is NaN too.
  return where(except_nan(positive(z, threshold), z), x, soft);
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

Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  check_input(x, "hardtanh");
  if (min_val > max_val)
    throw std::invalid_argument(
        fmt::format("hardtanh: min_val must be <= max_val, got min_val={} and max_val={}", min_val, max_val));
  // PyTorch's hardtanh_backward: 0 where x <= min_val or x >= max_val, so the gradient passes only
  // strictly inside (clamp's passes at the bounds too), and a NaN's passes. Outside, the constant
  // bound (clamp keeps a NaN, which the mask sends to x anyway).
  const Tensor inside = positive(x, min_val) * negative(x, max_val);
  return where(inside, x, clamp(x.detach(), min_val, max_val));
}

Tensor relu6(const Tensor& x) {
  check_input(x, "relu6");
  return hardtanh(x, 0.0, 6.0);  // PyTorch's relu6 is hardtanh(x, 0, 6): relu6'(0) = relu6'(6) = 0
}

Tensor hardsigmoid(const Tensor& x) {
  check_input(x, "hardsigmoid");
  // PyTorch's backward: grad / 6 where -3 < x < 3, else 0 (at ±3 and at NaN too). (LibTorch 1.13's
  // float64 backward multiplies by 1/6 rounded to float32, 0.16666667163; this is 1/6.)
  const Tensor inside = except_nan(positive(x, -3.0) * negative(x, 3.0), x);
  const Tensor outside = clamp((x.detach() + 3.0) / 6.0, 0.0, 1.0);  // 0 or 1, NaN for NaN
  return where(inside, (x + 3.0) / 6.0, outside);
}

Tensor hardswish(const Tensor& x) {
  check_input(x, "hardswish");
  // PyTorch's backward: 0 where x < -3, x/3 + 1/2 where x < 3, else (from 3, and NaN) 1. So the
  // middle branch is [-3, 3): hardswish'(-3) = -1/2 and hardswish'(3) = 1. The middle branch sees
  // 0 where it is not taken, so an infinite x makes no 0 * inf (NaN) in its gradient.
  const Tensor upper = Tensor(1.0) - except_nan(negative(x, 3.0), x);
  const Tensor lower = except_nan(negative(x, -3.0), x);
  const Tensor m = where(upper + lower, Tensor(0.0), x);  // the masks are disjoint
  return where(upper, x, where(lower, Tensor(0.0), m * (m + 3.0) / 6.0));
}

Tensor mish(const Tensor& x) {
  check_input(x, "mish");
  return x * tanh(softplus(x));  // tanh(softplus(x)) = 1 exactly past softplus's threshold 20
}

Tensor selu(const Tensor& x) {
  check_input(x, "selu");
  // The constants of the SELU paper (and PyTorch).
  const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  return exponential_linear(x, alpha, scale);
}

Tensor celu(const Tensor& x, double alpha) {
  check_input(x, "celu");
  if (alpha == 0) throw std::invalid_argument("celu: alpha must not be 0 (it divides x), got 0");
  return exponential_linear(x, alpha, 1.0, 1.0 / alpha);
}

Tensor prelu(const Tensor& x, const Tensor& weight) {
  check_input(x, "prelu");
  if (!weight.defined()) throw std::invalid_argument("prelu: the weight is undefined");
  if (weight.dim() > 1)
    throw std::invalid_argument(
        fmt::format("prelu: the weight must be 0-d or 1-d, got shape {}", weight.shape().str()));
  // One slope for every element, or one per channel (dim 1), broadcast as [C, 1, ..., 1].
  Tensor slope;
  if (weight.numel() == 1) {
    slope = reshape(weight, {});
  } else {
    const int64_t channels = x.dim() > 1 ? x.size(1) : 1;
    if (x.dim() == 0 || weight.numel() != channels)
      throw std::invalid_argument(fmt::format(
          "prelu: the weight has {} elements, and must have 1 or one per channel (the input's size along "
          "dim 1, here {}); input shape {}",
          weight.numel(), x.dim() > 1 ? fmt::format("{}", channels) : "none: the input is not 2-d or more",
          x.shape().str()));
    std::vector<int64_t> shape(x.dim() - 1, 1);
    shape[0] = channels;
    slope = reshape(weight, shape);
  }
  // PyTorch's: x where x > 0, else a x, for the forward and both gradients, so a NaN takes the
  // slope's branch (dx = a, da = x) and prelu'(0) = a. The slope's branch sees 0 where x > 0, so
  // x = inf gives da = 0, not 0 * inf.
  const Tensor pos = except_nan(positive(x), x);
  return where(pos, x, slope * where(pos, Tensor(0.0), x));
}

Tensor softsign(const Tensor& x) {
  check_input(x, "softsign");
  return x / (abs(x) + 1.0);  // PyTorch composes it the same way; abs'(0) = 0 does not matter here
}

Tensor tanhshrink(const Tensor& x) {
  check_input(x, "tanhshrink");
  return x - tanh(x);
}

Tensor logsigmoid(const Tensor& x) {
  check_input(x, "logsigmoid");
  // -ln(1 + e^-x): softplus computes it without overflow; an infinite threshold turns off its
  // linear region, which would drop PyTorch's e^x term below x = -20.
  return -softplus(-x, 1.0, std::numeric_limits<double>::infinity());
}

Tensor softmin(const Tensor& x, int64_t dim) {
  check_input(x, "softmin");
  normalize_dim(dim, std::max(x.dim(), 1), "softmin");  // a 0-d x takes dim 0 and -1, as softmax
  return softmax(-x, dim);
}

Tensor threshold(const Tensor& x, double threshold, double value) {
  check_input(x, "threshold");
  // PyTorch's: value where x <= threshold (gradient 0 there), else x (and NaN: x, gradient 1).
  return where(positive(x, threshold), x, Tensor(value));
}

Tensor glu(const Tensor& x, int64_t dim) {
  check_input(x, "glu");
  if (x.dim() == 0) throw std::invalid_argument("glu: the input must be at least 1-d, got a 0-d tensor");
  const int d = normalize_dim(dim, x.dim(), "glu");
  const int64_t n = x.size(d);
  if (n % 2 != 0)
    throw std::invalid_argument(fmt::format("glu: the size of dim {} must be even (it is halved), got {} in shape {}",
                                            dim, n, x.shape().str()));
  return slice(x, d, 0, n / 2) * sigmoid(slice(x, d, n / 2, n));
}

namespace {

// 1 where -lambd <= x <= lambd, else 0 (NaN: 0), the shrinks' dead zone; not recorded.
Tensor dead_zone(const Tensor& x, double lambd) {
  NoGradGuard no_grad;
  return (Tensor(1.0) - positive(x, lambd)) * (Tensor(1.0) - negative(x, -lambd));
}

}  // namespace

Tensor hardshrink(const Tensor& x, double lambd) {
  check_input(x, "hardshrink");
  // PyTorch's: 0 where -lambd <= x <= lambd (gradient 0, at ±lambd too), else x. A negative lambd
  // has no dead zone (as PyTorch, which accepts it).
  return where(dead_zone(x, lambd), Tensor(0.0), x);
}

Tensor softshrink(const Tensor& x, double lambd) {
  check_input(x, "softshrink");
  if (!(lambd >= 0)) throw std::invalid_argument(fmt::format("softshrink: lambd must be >= 0, got {}", lambd));
  // The gradient is 0 in the dead zone, at ±lambd included, and 1 elsewhere, as PyTorch's. A NaN
  // stays NaN (with gradient 1); PyTorch 1.13's forward gives 0 there.
  return where(dead_zone(x, lambd), Tensor(0.0), where(positive(x, lambd), x - lambd, x + lambd));
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

Hardtanh::Hardtanh(double min_val, double max_val) : Module("Hardtanh"), min_val_(min_val), max_val_(max_val) {
  // torch's module asserts max_val > min_val (its functional form accepts equal bounds).
  if (!(min_val < max_val))
    throw std::invalid_argument(
        fmt::format("Hardtanh: min_val must be < max_val, got min_val={} and max_val={}", min_val, max_val));
}
Tensor Hardtanh::forward(const Tensor& x) { return hardtanh(x, min_val_, max_val_); }
std::string Hardtanh::extra_repr() const { return fmt::format("min_val={}, max_val={}", min_val_, max_val_); }

Tensor ReLU6::forward(const Tensor& x) { return relu6(x); }
Tensor Hardsigmoid::forward(const Tensor& x) { return hardsigmoid(x); }
Tensor Hardswish::forward(const Tensor& x) { return hardswish(x); }
Tensor Mish::forward(const Tensor& x) { return mish(x); }
Tensor SELU::forward(const Tensor& x) { return selu(x); }

CELU::CELU(double alpha) : Module("CELU"), alpha_(alpha) {
  if (alpha == 0) throw std::invalid_argument("CELU: alpha must not be 0 (it divides x), got 0");
}
Tensor CELU::forward(const Tensor& x) { return celu(x, alpha_); }
std::string CELU::extra_repr() const { return fmt::format("alpha={}", alpha_); }

PReLU::PReLU(int64_t num_parameters, double init, DType dtype) : Module("PReLU"), num_parameters_(num_parameters) {
  if (num_parameters < 1)
    throw std::invalid_argument(fmt::format("PReLU: num_parameters must be >= 1, got {}", num_parameters));
  weight_ = register_parameter("weight", full({num_parameters}, init, dtype));
}
Tensor PReLU::forward(const Tensor& x) {
  check_input_dtype("PReLU::forward", x, weight_);
  return prelu(x, weight_);
}
std::string PReLU::extra_repr() const {
  std::string s = fmt::format("num_parameters={}", num_parameters_);
  if (weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

Tensor Softsign::forward(const Tensor& x) { return softsign(x); }
Tensor Tanhshrink::forward(const Tensor& x) { return tanhshrink(x); }
Tensor LogSigmoid::forward(const Tensor& x) { return logsigmoid(x); }

Tensor Softmin::forward(const Tensor& x) { return softmin(x, dim_); }
std::string Softmin::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor Threshold::forward(const Tensor& x) { return threshold(x, threshold_, value_); }
std::string Threshold::extra_repr() const { return fmt::format("threshold={}, value={}", threshold_, value_); }

Tensor GLU::forward(const Tensor& x) { return glu(x, dim_); }
std::string GLU::extra_repr() const { return fmt::format("dim={}", dim_); }

Tensor Hardshrink::forward(const Tensor& x) { return hardshrink(x, lambd_); }
std::string Hardshrink::extra_repr() const { return fmt::format("{}", lambd_); }

Softshrink::Softshrink(double lambd) : Module("Softshrink"), lambd_(lambd) {
  if (!(lambd >= 0)) throw std::invalid_argument(fmt::format("Softshrink: lambd must be >= 0, got {}", lambd));
}
Tensor Softshrink::forward(const Tensor& x) { return softshrink(x, lambd_); }
std::string Softshrink::extra_repr() const { return fmt::format("{}", lambd_); }

}  // namespace chainrule::nn
