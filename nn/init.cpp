#include "nn/init.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace chainrule::nn {

const char* nonlinearity_name(Nonlinearity n) {
  switch (n) {
    case Nonlinearity::Linear: return "linear";
    case Nonlinearity::Sigmoid: return "sigmoid";
    case Nonlinearity::Tanh: return "tanh";
    case Nonlinearity::ReLU: return "relu";
    case Nonlinearity::LeakyReLU: return "leaky_relu";
  }
  return "?";
}

namespace {

// Writes row-major values into t (any dtype); mutable_data bumps the version, as an in-place op.
void write(Tensor& t, const std::vector<double>& v) {
  if (t.dtype() == DType::float32) {
    float* p = t.mutable_data<float>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  } else {
    double* p = t.mutable_data<double>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  }
}

std::vector<double> uniform_values(const Tensor& t, double low, double high, Generator& gen) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = gen.uniform(low, high);
  return v;
}

std::vector<double> normal_values(const Tensor& t, double mean, double stddev, Generator& gen) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = gen.normal(mean, stddev);
  return v;
}

// The Q of a QR decomposition of the [rows, cols] matrix `m` (row-major) with R's diagonal
// positive, when rows >= cols: Gram-Schmidt on the columns, each orthogonalised twice against the
// ones before it (one pass loses orthogonality in floating point when columns are nearly
// dependent). The positive diagonal is what Gram-Schmidt gives: r_jj is the norm it divides by.
std::vector<double> orthonormal_columns(std::vector<double> m, size_t rows, size_t cols) {
  for (size_t j = 0; j < cols; ++j) {
    for (int pass = 0; pass < 2; ++pass)
      for (size_t i = 0; i < j; ++i) {
        double dot = 0;
        for (size_t r = 0; r < rows; ++r) dot += m[r * cols + i] * m[r * cols + j];
        for (size_t r = 0; r < rows; ++r) m[r * cols + j] -= dot * m[r * cols + i];
      }
    double norm = 0;
    for (size_t r = 0; r < rows; ++r) norm += m[r * cols + j] * m[r * cols + j];
    norm = std::sqrt(norm);
    for (size_t r = 0; r < rows; ++r) m[r * cols + j] /= norm;
  }
  return m;
}

// gain * an orthogonal [rows, cols] matrix from standard normal draws (torch's orthogonal_).
std::vector<double> orthogonal_values(const Tensor& t, double gain, Generator& gen) {
  const size_t rows = static_cast<size_t>(t.size(0)), cols = static_cast<size_t>(t.numel()) / rows;
  std::vector<double> a(rows * cols);
  for (double& x : a) x = gen.normal(0.0, 1.0);
  // Gram-Schmidt needs rows >= cols: a wide matrix is orthogonalised as its transpose.
  const bool wide = rows < cols;
  const size_t m = wide ? cols : rows, n = wide ? rows : cols;
  std::vector<double> tall(a.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) (wide ? tall[c * rows + r] : tall[r * cols + c]) = a[r * cols + c];
  const std::vector<double> q = orthonormal_columns(std::move(tall), m, n);
  std::vector<double> out(a.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) out[r * cols + c] = gain * (wide ? q[c * rows + r] : q[r * cols + c]);
  return out;
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + param * param));
  }
  return 1.0;
}

Fans compute_fans(const Shape& shape) {
  if (shape.size() < 2)
    throw std::invalid_argument(fmt::format(
        "compute_fans: fan_in and fan_out need a tensor of at least 2 dims ([out, in, ...]), got shape {}; "
        "a bias takes its layer's fans",
        shape.str()));
  int64_t receptive = 1;
  for (int d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator() = Generator(seed); }

Init Init::uniform(double a, double b) {
  if (!(a <= b) || !std::isfinite(a) || !std::isfinite(b))
    throw std::invalid_argument(fmt::format("Init::uniform: need finite a <= b, got a={} b={}", a, b));
  return Init(Kind::Uniform, a, b);
}

Init Init::normal(double mean, double stddev) {
  if (!(stddev >= 0) || !std::isfinite(mean) || !std::isfinite(stddev))
    throw std::invalid_argument(fmt::format("Init::normal: need finite mean and stddev >= 0, got mean={} stddev={}",
                                            mean, stddev));
  return Init(Kind::Normal, mean, stddev);
}

Init Init::constant(double value) {
  if (!std::isfinite(value))
    throw std::invalid_argument(fmt::format("Init::constant: the value must be finite, got {}", value));
  return Init(Kind::Constant, value, 0);
}

Init Init::values(NestedList values) {
  Init init(Kind::Values, 0, 0);
  init.values_ = std::move(values);
  return init;
}

Init Init::xavier_uniform(double gain) {
  if (!(gain > 0 && std::isfinite(gain)))
    throw std::invalid_argument(fmt::format("Init::xavier_uniform: gain must be finite and > 0, got {}", gain));
  return Init(Kind::XavierUniform, gain, 0);
}

Init Init::xavier_normal(double gain) {
  if (!(gain > 0 && std::isfinite(gain)))
    throw std::invalid_argument(fmt::format("Init::xavier_normal: gain must be finite and > 0, got {}", gain));
  return Init(Kind::XavierNormal, gain, 0);
}

Init Init::kaiming_uniform(Nonlinearity nonlinearity, FanMode mode, double negative_slope) {
  if (!std::isfinite(negative_slope))
    throw std::invalid_argument(
        fmt::format("Init::kaiming_uniform: negative_slope must be finite, got {}", negative_slope));
  Init init(Kind::KaimingUniform, negative_slope, 0);
  init.nonlinearity_ = nonlinearity;
  init.mode_ = mode;
  return init;
}

Init Init::kaiming_normal(Nonlinearity nonlinearity, FanMode mode, double negative_slope) {
  if (!std::isfinite(negative_slope))
    throw std::invalid_argument(
        fmt::format("Init::kaiming_normal: negative_slope must be finite, got {}", negative_slope));
  Init init(Kind::KaimingNormal, negative_slope, 0);
  init.nonlinearity_ = nonlinearity;
  init.mode_ = mode;
  return init;
}

Init Init::torch_default() { return Init(Kind::TorchDefault, 0, 0); }

Init Init::trunc_normal(double mean, double std, double a, double b) {
  if (!(std > 0 && a < b) || !std::isfinite(mean) || !std::isfinite(std) || !std::isfinite(a) || !std::isfinite(b))
    throw std::invalid_argument(fmt::format(
        "Init::trunc_normal: need finite mean, std > 0 and a < b, got mean={} std={} a={} b={}", mean, std, a, b));
  const double mass =
      (std::erf((b - mean) / (std * std::sqrt(2.0))) - std::erf((a - mean) / (std * std::sqrt(2.0)))) / 2;
  if (!(mass >= 1e-4))
    throw std::invalid_argument(
        fmt::format("Init::trunc_normal: [{}, {}] holds {:.3g} of N({}, {}^2), below 1e-4: too far in the tail to "
                    "draw from by redrawing",
                    a, b, mass, mean, std));
  Init init(Kind::TruncNormal, mean, std);
  init.c_ = a;
  init.d_ = b;
  return init;
}

Init Init::orthogonal(double gain) {
  if (!(gain > 0 && std::isfinite(gain)))
    throw std::invalid_argument(fmt::format("Init::orthogonal: gain must be finite and > 0, got {}", gain));
  return Init(Kind::Orthogonal, gain, 0);
}

void Init::apply(Tensor t, Generator& gen) const {
  const bool needs_fans = kind_ == Kind::XavierUniform || kind_ == Kind::XavierNormal ||
                          kind_ == Kind::KaimingUniform || kind_ == Kind::KaimingNormal ||
                          kind_ == Kind::TorchDefault;
  apply(t, gen, needs_fans ? compute_fans(t.shape()) : Fans{});
}

void Init::apply(Tensor t, Generator& gen, Fans fans) const {
  if (!t.defined()) throw std::invalid_argument("Init::apply: the tensor is undefined");
  const double in = static_cast<double>(fans.fan_in), out = static_cast<double>(fans.fan_out);
  const double kaiming_fan = mode_ == FanMode::FanIn ? in : out;
  auto need_positive = [&](double fan) {
    if (fan <= 0)
      throw std::invalid_argument(fmt::format("Init::apply({}): the fan is {}, not > 0 (tensor shape {})", to_string(),
                                              fan, t.shape().str()));
  };
  // The largest magnitude the tensor's dtype holds: a scale or a drawn value beyond it would be an
  // infinite weight.
  const double largest = t.dtype() == DType::float32 ? std::numeric_limits<float>::max()
                                                     : std::numeric_limits<double>::max();
  // A gain large enough (1e308, or 1e38 for float32) makes the bound or the standard deviation
  // overflow the tensor's dtype.
  auto need_finite = [&](double scale) {
    if (!(std::abs(scale) <= largest))
      throw std::invalid_argument(fmt::format("Init::apply({}): the scale it gives, {}, is not finite in {} (tensor "
                                              "shape {})",
                                              to_string(), scale, dtype_name(t.dtype()), t.shape().str()));
    return scale;
  };
  // Drawn values too (uniform(-1e300, 1e300), or a normal's tail, in float32), checked before
  // anything is written.
  auto fill = [&](const std::vector<double>& v) {
    for (double x : v)
      if (!(std::abs(x) <= largest))
        throw std::invalid_argument(fmt::format("Init::apply({}): it drew {}, which is not finite in {} (tensor "
                                                "shape {}); nothing was written",
                                                to_string(), x, dtype_name(t.dtype()), t.shape().str()));
    write(t, v);
  };
  switch (kind_) {
    case Kind::Uniform: fill(uniform_values(t, a_, b_, gen)); return;
    case Kind::Normal: fill(normal_values(t, a_, b_, gen)); return;
    case Kind::Constant: write(t, std::vector<double>(static_cast<size_t>(t.numel()), need_finite(a_))); return;
    case Kind::Values: set_values(t, values_); return;
    case Kind::XavierUniform: {
      need_positive(in + out);
      const double bound = need_finite(a_ * std::sqrt(6.0 / (in + out)));
      fill(uniform_values(t, -bound, bound, gen));
      return;
    }
    case Kind::XavierNormal:
      need_positive(in + out);
      fill(normal_values(t, 0.0, need_finite(a_ * std::sqrt(2.0 / (in + out))), gen));
      return;
    case Kind::KaimingUniform: {
      need_positive(kaiming_fan);
      const double bound = need_finite(calculate_gain(nonlinearity_, a_) * std::sqrt(3.0 / kaiming_fan));
      fill(uniform_values(t, -bound, bound, gen));
      return;
    }
    case Kind::KaimingNormal:
      need_positive(kaiming_fan);
      fill(normal_values(t, 0.0, need_finite(calculate_gain(nonlinearity_, a_) / std::sqrt(kaiming_fan)), gen));
      return;
    case Kind::TorchDefault: {
      need_positive(in);
      const double bound = 1.0 / std::sqrt(in);
      fill(uniform_values(t, -bound, bound, gen));
      return;
    }
    case Kind::TruncNormal: {
      std::vector<double> v(static_cast<size_t>(t.numel()));
      for (double& x : v) {
        do x = gen.normal(a_, b_);
        while (!(x >= c_ && x <= d_));
      }
      fill(v);
      return;
    }
    case Kind::Orthogonal:
      if (t.dim() < 2)
        throw std::invalid_argument(fmt::format("Init::apply(orthogonal): needs a tensor of 2 or more dims, got shape {}",
                                                t.shape().str()));
      if (t.numel() > 0) fill(orthogonal_values(t, need_finite(a_), gen));
      return;
  }
}

void init_weight_bias(const Init& weight_init, const Init& bias_init, const std::optional<uint64_t>& seed,
                      const Tensor& weight, const Tensor& bias, Generator& gen) {
  Generator own(seed.value_or(0));
  Generator& g = seed ? own : gen;
  const Fans fans = compute_fans(weight.shape());
  weight_init.apply(weight, g, fans);
  if (bias.defined()) bias_init.apply(bias, g, fans);
}

std::string Init::to_string() const {
  const char* mode = mode_ == FanMode::FanIn ? "fan_in" : "fan_out";
  switch (kind_) {
    case Kind::Uniform: return fmt::format("uniform({}, {})", a_, b_);
    case Kind::Normal: return fmt::format("normal(mean={}, std={})", a_, b_);
    case Kind::Constant: return fmt::format("constant({})", a_);
    case Kind::Values: return "values";
    case Kind::XavierUniform: return fmt::format("xavier_uniform(gain={})", a_);
    case Kind::XavierNormal: return fmt::format("xavier_normal(gain={})", a_);
    case Kind::KaimingUniform:
      return fmt::format("kaiming_uniform({}, {})", nonlinearity_name(nonlinearity_), mode);
    case Kind::KaimingNormal:
      return fmt::format("kaiming_normal({}, {})", nonlinearity_name(nonlinearity_), mode);
    case Kind::TorchDefault: return "torch_default";
    case Kind::TruncNormal: return fmt::format("trunc_normal(mean={}, std={}, a={}, b={})", a_, b_, c_, d_);
    case Kind::Orthogonal: return fmt::format("orthogonal(gain={})", a_);
  }
  return "?";
}

void set_values(Tensor param, const NestedList& values) {
  if (!param.defined()) throw std::invalid_argument("set_values: the tensor is undefined");
  const Tensor v = tensor(values, DType::float64);
  if (!(v.shape() == param.shape()))
    throw std::invalid_argument(fmt::format("set_values: the values have shape {} but the tensor has shape {}",
                                            v.shape().str(), param.shape().str()));
  write(param, v.to_vector());
}

}  // namespace chainrule::nn
