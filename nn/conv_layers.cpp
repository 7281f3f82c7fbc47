#include "nn/conv.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <vector>

#include "nn/conv_detail.h"
#include "nn/pad.h"

namespace chainrule::nn {

using namespace conv_detail;

const char* padding_mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::Zeros: return "zeros";
    case PaddingMode::Reflect: return "reflect";
    case PaddingMode::Replicate: return "replicate";
    case PaddingMode::Circular: return "circular";
  }
  return "?";
}

namespace {

// The end of a convolution layer's extra_repr: ", bias=false", ", padding_mode=reflect" and
// ", dtype=float64" where they are not the defaults.
std::string weight_bias_repr(bool bias, PaddingMode mode, const Tensor& weight) {
  std::string s = bias ? "" : ", bias=false";
  if (mode != PaddingMode::Zeros) s += fmt::format(", padding_mode={}", padding_mode_name(mode));
  if (weight.defined() && weight.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight.dtype()));
  return s;
}

// ", padding=[1, 1]", ", padding=same" or "" (no padding), as torch's repr.
template <std::size_t D>
std::string padding_repr(const std::optional<Padding>& kind, const std::array<int64_t, D>& padding) {
  if (kind) return fmt::format(", padding={}", *kind == Padding::Same ? "same" : "valid");
  for (int64_t p : padding)
    if (p != 0) return fmt::format(", padding=[{}]", fmt::join(padding, ", "));
  return "";
}

// Conv2d's and Conv1d's channels against their groups, with the values.
void check_layer_groups(const char* layer, int64_t in, int64_t out, int64_t groups) {
  if (groups < 1) throw std::invalid_argument(fmt::format("{}: groups must be >= 1, got {}", layer, groups));
  for (const auto& [name, channels] : {std::pair{"in_channels", in}, std::pair{"out_channels", out}})
    if (channels % groups != 0)
      throw std::invalid_argument(
          fmt::format("{}: {} must be divisible by groups, got {} and groups={}", layer, name, channels, groups));
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& options) : Conv2d(options, default_generator()) {}

Conv2d::Conv2d(const Conv2dOptions& options, Generator& gen) : Module("Conv2d"), options_(options) {
  const int64_t in = options.in_channels(), out = options.out_channels();
  const auto [kh, kw] = options.kernel_size();
  if (in < 1 || out < 1 || kh < 1 || kw < 1)
    throw std::invalid_argument(fmt::format("Conv2d: in_channels, out_channels and the kernel size must be >= 1, got "
                                            "{}, {} and {}",
                                            in, out, pair_str(options.kernel_size())));
  // The window's other sizes are checked here too, not at the first forward.
  Window2d{.kernel = options.kernel_size(), .stride = options.stride(), .padding = options.padding(),
           .dilation = options.dilation()}
      .check("Conv2d");
  check_layer_groups("Conv2d", in, out, options.groups());
  pads_ = layer_pads("Conv2d", options.padding_kind(), options.padding(), options.kernel_size(), options.dilation(),
                     options.stride());
  weight_ = register_parameter("weight", zeros({out, in / options.groups(), kh, kw}, options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros({out}, options.dtype()));
  options.init_weight_bias(weight_, bias_, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  check_image(x, "Conv2d::forward");
  if (x.size(1) != options_.in_channels())
    throw std::invalid_argument(fmt::format("Conv2d::forward: expected an input [N, {}, H, W] (in_channels={}), got {}",
                                            options_.in_channels(), options_.in_channels(), x.shape().str()));
  check_input_dtype("Conv2d::forward", x, weight_);
  const PaddingMode mode = options_.padding_mode();
  if (conv_pads_itself(mode, pads_))
    return conv2d(x, weight_, bias_, options_.stride(), {pads_[2], pads_[0]}, options_.dilation(), options_.groups());
  return conv2d(padded_input(x, pads_, mode), weight_, bias_, options_.stride(), {0, 0}, options_.dilation(),
                options_.groups());
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", options_.in_channels(), options_.out_channels(),
                              pair_str(options_.kernel_size()), pair_str(options_.stride()));
  s += padding_repr(options_.padding_kind(), options_.padding());
  if (options_.dilation() != std::array<int64_t, 2>{1, 1}) s += ", dilation=" + pair_str(options_.dilation());
  if (options_.groups() != 1) s += fmt::format(", groups={}", options_.groups());
  return s + weight_bias_repr(options_.bias(), options_.padding_mode(), weight_);
}

Conv1d::Conv1d(const Conv1dOptions& options) : Conv1d(options, default_generator()) {}

Conv1d::Conv1d(const Conv1dOptions& options, Generator& gen) : Module("Conv1d"), options_(options) {
  const int64_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
  if (in < 1 || out < 1 || k < 1)
    throw std::invalid_argument(fmt::format(
        "Conv1d: in_channels, out_channels and the kernel size must be >= 1, got {}, {} and {}", in, out, k));
  // The window's other sizes are checked here too, not at the first forward.
  Window1d{.kernel = k, .stride = options.stride(), .padding = options.padding(), .dilation = options.dilation()}.check(
      "Conv1d");
  check_layer_groups("Conv1d", in, out, options.groups());
  pads_ = layer_pads<1>("Conv1d", options.padding_kind(), {options.padding()}, {k}, {options.dilation()},
                        {options.stride()});
  weight_ = register_parameter("weight", zeros({out, in / options.groups(), k}, options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros({out}, options.dtype()));
  options.init_weight_bias(weight_, bias_, gen);
}

Tensor Conv1d::forward(const Tensor& x) {
  check_signal(x, "Conv1d::forward");
  if (x.size(1) != options_.in_channels())
    throw std::invalid_argument(fmt::format("Conv1d::forward: expected an input [N, {}, L] (in_channels={}), got {}",
                                            options_.in_channels(), options_.in_channels(), x.shape().str()));
  check_input_dtype("Conv1d::forward", x, weight_);
  const PaddingMode mode = options_.padding_mode();
  if (conv_pads_itself(mode, pads_))
    return conv1d(x, weight_, bias_, options_.stride(), pads_[0], options_.dilation(), options_.groups());
  return conv1d(padded_input(x, pads_, mode), weight_, bias_, options_.stride(), 0, options_.dilation(),
                options_.groups());
}

std::string Conv1d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size=[{}], stride=[{}]", options_.in_channels(), options_.out_channels(),
                              options_.kernel_size(), options_.stride());
  s += padding_repr<1>(options_.padding_kind(), {options_.padding()});
  if (options_.dilation() != 1) s += fmt::format(", dilation=[{}]", options_.dilation());
  if (options_.groups() != 1) s += fmt::format(", groups={}", options_.groups());
  return s + weight_bias_repr(options_.bias(), options_.padding_mode(), weight_);
}

}  // namespace chainrule::nn
