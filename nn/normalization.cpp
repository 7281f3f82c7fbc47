#include "nn/normalization.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <stdexcept>

namespace chainrule::nn {

namespace {

void check_eps(const char* layer, double eps) {
  if (!(eps > 0) || !std::isfinite(eps))
    throw std::invalid_argument(fmt::format("{}: eps must be a finite number > 0, got {}", layer, eps));
}

void check_input(const char* op, const Tensor& x, const Tensor& parameter) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  if (parameter.defined() && x.dtype() != parameter.dtype())
    throw std::invalid_argument(fmt::format(
        "{}: the input is {} but the layer's parameters are {}; convert with x.to(DType::{}) or module->to(DType::{})",
        op, dtype_name(x.dtype()), dtype_name(parameter.dtype()), dtype_name(parameter.dtype()),
        dtype_name(x.dtype())));
}

// (x - mean) / sqrt(var + eps) over `dims` (kept), var biased; also returns the mean and the
// biased variance, for BatchNorm's running statistics.
struct Normalised {
  Tensor y, mean, var;
};
Normalised normalise(const Tensor& x, const std::vector<int64_t>& dims, double eps) {
  Tensor mu = mean(x, dims, true);
  Tensor centred = x - mu;
  Tensor var = mean(centred * centred, dims, true);
  return {centred / sqrt(var + eps), mu, var};
}

}  // namespace

Tensor layer_norm(const Tensor& x, const std::vector<int64_t>& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_input("layer_norm", x, weight.defined() ? weight : bias);
  check_eps("layer_norm", eps);
  const int k = static_cast<int>(normalized_shape.size());
  bool trailing = k >= 1 && x.dim() >= k;
  for (int i = 0; trailing && i < k; ++i) trailing = x.size(x.dim() - k + i) == normalized_shape[static_cast<std::size_t>(i)];
  if (!trailing)
    throw std::invalid_argument(fmt::format("layer_norm: the input's last dims must be normalized_shape [{}], got an input {}",
                                            fmt::join(normalized_shape, ", "), x.shape().str()));
  const Shape norm(normalized_shape);
  for (const auto& [name, t] : {std::pair{"weight", weight}, std::pair{"bias", bias}})
    if (t.defined() && t.shape() != norm)
      throw std::invalid_argument(fmt::format("layer_norm: {} has shape {}, expected normalized_shape {}", name,
                                              t.shape().str(), norm.str()));
  std::vector<int64_t> dims;
  for (int i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  Tensor y = normalise(x, dims, eps).y;
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

LayerNorm::LayerNorm(const LayerNormOptions& options) : Module("LayerNorm"), options_(options) {
  const auto& shape = options.normalized_shape();
  if (shape.empty()) throw std::invalid_argument("LayerNorm: normalized_shape must have at least one dim, got []");
  for (int64_t d : shape)
    if (d < 1)
      throw std::invalid_argument(
          fmt::format("LayerNorm: normalized_shape's dims must be >= 1, got [{}]", fmt::join(shape, ", ")));
  check_eps("LayerNorm", options.eps());
  if (!options.elementwise_affine()) return;
  weight_ = register_parameter("weight", ones(Shape(shape), options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros(Shape(shape), options.dtype()));
}

Tensor LayerNorm::forward(const Tensor& x) {
  check_input("LayerNorm::forward", x, weight_);
  return layer_norm(x, options_.normalized_shape(), weight_, bias_, options_.eps());
}

std::string LayerNorm::extra_repr() const {
  std::string s = fmt::format("[{}], eps={}, elementwise_affine={}", fmt::join(options_.normalized_shape(), ", "),
                              options_.eps(), options_.elementwise_affine());
  if (options_.elementwise_affine() && !options_.bias()) s += ", bias=false";
  if (weight_.defined() && weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

BatchNorm1d::BatchNorm1d(const BatchNorm1dOptions& options) : Module("BatchNorm1d"), options_(options) {
  const int64_t c = options.num_features();
  if (c < 1) throw std::invalid_argument(fmt::format("BatchNorm1d: num_features must be >= 1, got {}", c));
  check_eps("BatchNorm1d", options.eps());
  if (!(options.momentum() >= 0 && options.momentum() <= 1))
    throw std::invalid_argument(fmt::format("BatchNorm1d: momentum must be in [0, 1], got {}", options.momentum()));
  if (options.affine()) {
    weight_ = register_parameter("weight", ones({c}, options.dtype()));
    bias_ = register_parameter("bias", zeros({c}, options.dtype()));
  }
  running_mean_ = register_buffer("running_mean", zeros({c}, options.dtype()));
  running_var_ = register_buffer("running_var", ones({c}, options.dtype()));
}

Tensor BatchNorm1d::forward(const Tensor& x) {
  check_input("BatchNorm1d::forward", x, running_mean_);
  const int64_t c = options_.num_features();
  if (!((x.dim() == 2 || x.dim() == 3) && x.size(1) == c))
    throw std::invalid_argument(fmt::format(
        "BatchNorm1d::forward: expected an input of shape [N, {0}] or [N, {0}, L] (num_features={0}), got {1}", c,
        x.shape().str()));
  // Per-channel tensors ([C]) broadcast against [N, C] as they are, against [N, C, L] as [C, 1].
  const bool has_length = x.dim() == 3;
  const auto per_channel = [&](const Tensor& t) { return has_length ? reshape(t, {c, 1}) : t; };
  Tensor y;
  if (is_training()) {
    const int64_t n = x.size(0) * (has_length ? x.size(2) : 1);
    if (n < 2)
      throw std::invalid_argument(fmt::format(
          "BatchNorm1d::forward: training needs more than one value per channel to estimate a variance, got input {} "
          "(use eval() for single samples)",
          x.shape().str()));
    Normalised z = normalise(x, has_length ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0}, options_.eps());
    y = z.y;
    NoGradGuard no_grad;
    const double m = options_.momentum();
    const double unbias = static_cast<double>(n) / static_cast<double>(n - 1);
    running_mean_ *= 1 - m;
    running_mean_.add_(reshape(z.mean.detach(), {c}), m);
    running_var_ *= 1 - m;
    running_var_.add_(reshape(z.var.detach(), {c}), m * unbias);
  } else {
    y = (x - per_channel(running_mean_)) / per_channel(sqrt(running_var_ + options_.eps()));
  }
  if (weight_.defined()) y = y * per_channel(weight_) + per_channel(bias_);
  return y;
}

std::string BatchNorm1d::extra_repr() const {
  std::string s = fmt::format("{}, eps={}, momentum={}, affine={}", options_.num_features(), options_.eps(),
                              options_.momentum(), options_.affine());
  if (running_mean_.defined() && running_mean_.dtype() != DType::float32)
    s += fmt::format(", dtype={}", dtype_name(running_mean_.dtype()));
  return s;
}

}  // namespace chainrule::nn
