#include "nn/normalization.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
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
  check_input_dtype(op, x, parameter);
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

namespace {

void check_groups(const char* op, int64_t groups, int64_t channels) {
  if (groups < 1 || channels < 1 || channels % groups != 0)
    throw std::invalid_argument(fmt::format("{}: num_groups ({}) must be >= 1 and divide the channels ({})", op,
                                            groups, channels));
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  check_input("group_norm", x, weight.defined() ? weight : bias);
  check_eps("group_norm", eps);
  if (x.dim() < 2)
    throw std::invalid_argument(fmt::format("group_norm: expected an input [N, C, ...], got {}", x.shape().str()));
  const int64_t n = x.size(0), c = x.size(1);
  check_groups("group_norm", num_groups, c);
  for (const auto& [name, t] : {std::pair{"weight", weight}, std::pair{"bias", bias}})
    if (t.defined() && t.shape() != Shape{c})
      throw std::invalid_argument(
          fmt::format("group_norm: {} has shape {}, expected [{}] (the input's channels)", name, t.shape().str(), c));
  // Each sample's group as one row: [N, G, C / G * (the positions)].
  int64_t group_size = c / num_groups;
  for (int d = 2; d < x.dim(); ++d) group_size *= x.size(d);
  Tensor y = reshape(normalise(reshape(x, {n, num_groups, group_size}), {2}, eps).y, x.shape().to_vector());
  if (!weight.defined() && !bias.defined()) return y;
  std::vector<int64_t> per_channel(static_cast<std::size_t>(x.dim() - 1), 1);  // [C, 1, ..., 1]
  per_channel[0] = c;
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);
  return y;
}

GroupNorm::GroupNorm(const GroupNormOptions& options) : Module("GroupNorm"), options_(options) {
  check_groups("GroupNorm", options.num_groups(), options.num_channels());
  check_eps("GroupNorm", options.eps());
  if (!options.affine()) return;
  weight_ = register_parameter("weight", ones({options.num_channels()}, options.dtype()));
  bias_ = register_parameter("bias", zeros({options.num_channels()}, options.dtype()));
}

Tensor GroupNorm::forward(const Tensor& x) {
  check_input("GroupNorm::forward", x, weight_);
  if (x.defined() && x.dim() >= 2 && x.size(1) != options_.num_channels())
    throw std::invalid_argument(fmt::format("GroupNorm::forward: the input {} has {} channels, the layer {}",
                                            x.shape().str(), x.size(1), options_.num_channels()));
  return group_norm(x, options_.num_groups(), weight_, bias_, options_.eps());
}

std::string GroupNorm::extra_repr() const {
  std::string s = fmt::format("{}, {}, eps={}, affine={}", options_.num_groups(), options_.num_channels(),
                              options_.eps(), options_.affine());
  if (weight_.defined() && weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

BatchNorm::BatchNorm(const char* name, const BatchNormOptions& options, std::vector<int> ranks, const char* shapes)
    : Module(name), options_(options), ranks_(std::move(ranks)), shapes_(shapes) {
  const int64_t c = options.num_features();
  if (c < 1) throw std::invalid_argument(fmt::format("{}: num_features must be >= 1, got {}", name, c));
  check_eps(name, options.eps());
  if (const auto m = options.momentum(); m && !(*m >= 0 && *m <= 1))
    throw std::invalid_argument(fmt::format("{}: momentum must be in [0, 1] (or std::nullopt), got {}", name, *m));
  if (options.affine()) {
    weight_ = register_parameter("weight", ones({c}, options.dtype()));
    bias_ = register_parameter("bias", zeros({c}, options.dtype()));
  }
  running_mean_ = register_buffer("running_mean", zeros({c}, options.dtype()));
  running_var_ = register_buffer("running_var", ones({c}, options.dtype()));
  num_batches_tracked_ = register_buffer("num_batches_tracked", zeros(Shape{}, options.dtype()));
  mark_optional_in_files("num_batches_tracked");
}

Tensor BatchNorm::forward(const Tensor& x) {
  const std::string op = name() + "::forward";
  check_input(op.c_str(), x, running_mean_);
  const int64_t c = options_.num_features();
  if (std::find(ranks_.begin(), ranks_.end(), x.dim()) == ranks_.end() || x.size(1) != c)
    throw std::invalid_argument(fmt::format("{}: expected an input of shape {} (num_features={}), got {}", op,
                                            fmt::format(fmt::runtime(shapes_), c), c, x.shape().str()));
  // Per-channel tensors ([C]) broadcast against [N, C] as they are, against [N, C, ...] as
  // [C, 1, ...]; the statistics are over every dim but the channels'.
  std::vector<int64_t> channel_shape{c}, dims{0};
  int64_t n = x.size(0);
  for (int d = 2; d < x.dim(); ++d) {
    channel_shape.push_back(1);
    dims.push_back(d);
    n *= x.size(d);
  }
  const auto per_channel = [&](const Tensor& t) { return x.dim() > 2 ? reshape(t, channel_shape) : t; };
  Tensor y;
  if (is_training()) {
    if (n < 2)
      throw std::invalid_argument(fmt::format(
          "{}: training needs more than one value per channel to estimate a variance, got input {} (use eval() for "
          "single samples)",
          op, x.shape().str()));
    Normalised z = normalise(x, dims, options_.eps());
    y = z.y;
    NoGradGuard no_grad;
    num_batches_tracked_ += 1.0;
    const double m = options_.momentum() ? *options_.momentum() : 1 / num_batches_tracked_.item();
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

std::string BatchNorm::extra_repr() const {
  const auto m = options_.momentum();
  std::string s = fmt::format("{}, eps={}, momentum={}, affine={}", options_.num_features(), options_.eps(),
                              m ? fmt::format("{}", *m) : "None", options_.affine());
  if (running_mean_.defined() && running_mean_.dtype() != DType::float32)
    s += fmt::format(", dtype={}", dtype_name(running_mean_.dtype()));
  return s;
}

}  // namespace chainrule::nn
