#pragma once
// Convolution over images [N, C, H, W] and over signals [N, C, L], as torch.nn's Conv2d and Conv1d,
// and Flatten; the pools are in nn/pool.h (included). Compositions of autograd ops (unfold,
// matmul, reshape, permute; see autograd/ops.h): no derivative is defined here, so gradcheck and
// create_graph work through them.
//
//   conv2d:     y[n, o] = bias[o] + sum_c,i,j weight[o, c, i, j] * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
//               (cross-correlation, as every framework's "convolution"): matmul(weight as [O, C*kh*kw],
//               unfold(x)) -> [N, O, OH * OW], reshaped; OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1
//   groups:     (torch's) the C input channels and the O outputs split into `groups` blocks in order;
//               output block g sees input block g only: with G = groups, Cg = C / G, Og = O / G,
//               y[n, o] = bias[o] + sum_c<Cg,i,j weight[o, c, i, j] * x[n, (o / Og) * Cg + c, ...],
//               weight [O, C / G, kh, kw]. groups = C is a depthwise convolution (each channel
//               filtered alone). One unfold and one batched matmul, [N, G, Og, Cg*kh*kw] @ [N, G, Cg*kh*kw, L].
//   the layers' padding: numbers (zeros, the convolution's own padding), kSame (the input's size;
//               an even kernel's extra row and column after, as torch's) or kValid (none), filled by
//               padding_mode: zeros, or nn::pad's reflect, replicate or circular before the convolution.
//   conv1d:     conv2d over x viewed as [N, C, 1, L] with the weight [O, C, k] as [O, C, 1, k],
//               the result viewed back as [N, C', OL]; OL = (L + 2 p - d (k - 1) - 1) / s + 1.
//   Flatten:    dims start_dim..end_dim into one (default 1..-1: [N, C, H, W] -> [N, C*H*W]).
//
//   auto net = std::make_shared<nn::Sequential>(
//       std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 8, 3).padding(1)), std::make_shared<nn::ReLU>(),
//       std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
//       std::make_shared<nn::Dense>(nn::DenseOptions(8 * 14 * 14, 10)));
//   auto seq = std::make_shared<nn::Sequential>(  // signals [N, 2, 100]
//       std::make_shared<nn::Conv1d>(nn::Conv1dOptions(2, 16, 5).padding(2)), std::make_shared<nn::ReLU>(),
//       std::make_shared<nn::AdaptiveMaxPool1d>(1), std::make_shared<nn::Flatten>());  // [N, 16]
//   nn::Conv2d depthwise(nn::Conv2dOptions(32, 32, 3).groups(32).padding(nn::kSame)
//                            .padding_mode(nn::PaddingMode::Reflect));  // [N, 32, H, W] -> [N, 32, H, W]
//
// Sources: the functions conv2d and conv1d in conv.cpp, the Conv layers in conv_layers.cpp, the
// pools (nn/pool.h) and Flatten in conv_pool.cpp.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/init.h"
#include "nn/module.h"
#include "nn/pool.h"

namespace chainrule::nn {

// x [N, C, H, W], weight [O, C / groups, kh, kw], bias [O] or undefined -> [N, O, OH, OW]; stride,
// padding (zeros) and dilation as Window2d's (autograd/tensor.h). std::invalid_argument naming
// conv2d and the shapes for a mismatch of channels, ranks or dtypes, groups < 1, or O not
// divisible by groups.
//   Tensor y = nn::conv2d(x, w, b, {1, 1}, {1, 1}, {1, 1}, /*groups=*/8);  // x [N, 8, H, W], w [8, 1, 3, 3]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), std::array<int64_t, 2> stride = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
              int64_t groups = 1);
// x [N, C, L], weight [O, C / groups, k], bias [O] or undefined -> [N, O, OL]: conv2d over
// [N, C, 1, L] with the weight [O, C / groups, 1, k]. stride, dilation, groups >= 1 and padding >= 0
// (zeros). std::invalid_argument naming conv1d and the shapes for a mismatch of channels, ranks or
// dtypes, a bad window, bad groups or an input shorter than the window.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// padding(kSame) / padding(kValid) of a layer's options: torch's padding='same' / 'valid' (named as
// LibTorch's torch::kSame / torch::kValid). Same keeps the input's size (stride 1 only): a dim with
// kernel k and dilation d is padded by d (k - 1) in all, half of it (rounded down) before and the
// rest after, so an even kernel's extra one goes right / at the bottom, as torch's. Valid is no
// padding. (Tags, not strings: a string overload would make padding(0) ambiguous.)
enum class Padding { Same, Valid };
inline constexpr Padding kSame = Padding::Same;
inline constexpr Padding kValid = Padding::Valid;

// conv2d and conv1d with padding kSame or kValid (torch's F.conv2d(..., padding='same')): zeros,
// split as the layers split them; kSame needs stride 1 (std::invalid_argument naming the op and
// the stride otherwise).
//   Tensor y = nn::conv2d(x, w, b, {1, 1}, nn::kSame);  // [N, C, H, W] -> [N, O, H, W]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride, Padding padding,
              std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, Padding padding,
              int64_t dilation = 1, int64_t groups = 1);

// What fills a layer's padding (torch's padding_mode): zeros, or nn::pad's reflect, replicate or
// circular (nn/pad.h), which pad x before a convolution without padding of its own. A padding
// reflect cannot fill (>= the input's size) is nn::pad's std::invalid_argument at forward.
enum class PaddingMode { Zeros, Reflect, Replicate, Circular };
// torch's name of it: "zeros", "reflect", "replicate", "circular".
const char* padding_mode_name(PaddingMode mode);

// Conv2dOptions(in, out, kernel).stride(2).padding(1).dilation(1).groups(1), .padding(kSame),
// .padding_mode(PaddingMode::Reflect), and the weight and bias options of every such layer (bias,
// init, bias_init, dtype, seed; nn/init.h).
//   nn::Conv2d same(nn::Conv2dOptions(3, 8, 4).padding(nn::kSame).padding_mode(nn::PaddingMode::Reflect));
struct Conv2dOptions : WeightBiasOptions<Conv2dOptions> {
  // in_channels, out_channels >= 1 and kernel sizes >= 1 (checked by Conv2d, with the values).
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2d kernel_size)
      : in_(in_channels), out_(out_channels), kernel_(kernel_size.v) {}
  Conv2dOptions& stride(Size2d s) { stride_ = s.v; return *this; }      // default 1
  Conv2dOptions& padding(Size2d p) { padding_ = p.v; padding_kind_.reset(); return *this; }  // default 0
  // kSame or kValid in place of numbers (padding() reads {0, 0} then); kSame needs stride 1.
  Conv2dOptions& padding(Padding kind) { padding_ = {0, 0}; padding_kind_ = kind; return *this; }
  Conv2dOptions& padding_mode(PaddingMode mode) { padding_mode_ = mode; return *this; }  // default Zeros
  Conv2dOptions& dilation(Size2d d) { dilation_ = d.v; return *this; }  // default 1
  // default 1; in_channels and out_channels divisible by it (checked by Conv2d).
  Conv2dOptions& groups(int64_t g) { groups_ = g; return *this; }

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  const std::array<int64_t, 2>& kernel_size() const { return kernel_; }
  const std::array<int64_t, 2>& stride() const { return stride_; }
  const std::array<int64_t, 2>& padding() const { return padding_; }
  const std::optional<Padding>& padding_kind() const { return padding_kind_; }  // set by padding(kSame / kValid)
  PaddingMode padding_mode() const { return padding_mode_; }
  const std::array<int64_t, 2>& dilation() const { return dilation_; }
  int64_t groups() const { return groups_; }

 private:
  int64_t in_, out_;
  std::array<int64_t, 2> kernel_, stride_{1, 1}, padding_{0, 0}, dilation_{1, 1};
  std::optional<Padding> padding_kind_;
  PaddingMode padding_mode_ = PaddingMode::Zeros;
  int64_t groups_ = 1;
};

class Conv2d : public Module {
 public:
  // Registers "weight" [out_channels, in_channels / groups, kh, kw] and "bias" [out_channels];
  // torch's default init with fan_in = in_channels / groups * kh * kw. std::invalid_argument for
  // sizes below 1, channels not divisible by groups, or padding(kSame) with a stride (naming them).
  explicit Conv2d(const Conv2dOptions& options);
  Conv2d(const Conv2dOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [N, in_channels, H, W] -> [N, out_channels, OH, OW]
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv2dOptions& options() const { return options_; }
  // "1, 8, kernel_size=[3, 3], stride=[1, 1]" and padding (numbers, same or valid), dilation,
  // groups, bias=false, padding_mode, dtype when not defaults (torch's order).
  std::string extra_repr() const override;

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
  std::vector<int64_t> pads_;  // nn::pad's {left, right, top, bottom}, from the options
};

// Conv1dOptions(in, out, kernel).stride(2).padding(1).dilation(1).groups(1), .padding(kSame),
// .padding_mode(...), with the weight and bias options of Conv2dOptions (nn/init.h).
struct Conv1dOptions : WeightBiasOptions<Conv1dOptions> {
  // in_channels, out_channels and kernel_size >= 1 (checked by Conv1d, with the values).
  Conv1dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_(in_channels), out_(out_channels), kernel_(kernel_size) {}
  Conv1dOptions& stride(int64_t s) { stride_ = s; return *this; }      // default 1
  Conv1dOptions& padding(int64_t p) { padding_ = p; padding_kind_.reset(); return *this; }  // default 0
  // kSame or kValid in place of a number (padding() reads 0 then); kSame needs stride 1.
  Conv1dOptions& padding(Padding kind) { padding_ = 0; padding_kind_ = kind; return *this; }
  Conv1dOptions& padding_mode(PaddingMode mode) { padding_mode_ = mode; return *this; }  // default Zeros
  Conv1dOptions& dilation(int64_t d) { dilation_ = d; return *this; }  // default 1
  // default 1; in_channels and out_channels divisible by it (checked by Conv1d).
  Conv1dOptions& groups(int64_t g) { groups_ = g; return *this; }

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel_size() const { return kernel_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }
  const std::optional<Padding>& padding_kind() const { return padding_kind_; }
  PaddingMode padding_mode() const { return padding_mode_; }
  int64_t dilation() const { return dilation_; }
  int64_t groups() const { return groups_; }

 private:
  int64_t in_, out_, kernel_, stride_ = 1, padding_ = 0, dilation_ = 1, groups_ = 1;
  std::optional<Padding> padding_kind_;
  PaddingMode padding_mode_ = PaddingMode::Zeros;
};

class Conv1d : public Module {
 public:
  // Registers "weight" [out_channels, in_channels / groups, k] (torch's layout, so a state_dict's
  // tensors load as they are) and "bias" [out_channels]; torch's default init with
  // fan_in = in_channels / groups * k. The same checks as Conv2d's.
  explicit Conv1d(const Conv1dOptions& options);
  Conv1d(const Conv1dOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [N, in_channels, L] -> [N, out_channels, OL]
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv1dOptions& options() const { return options_; }
  // "1, 8, kernel_size=[3], stride=[1]" and padding, dilation, groups, bias=false, padding_mode,
  // dtype when not defaults.
  std::string extra_repr() const override;

 private:
  Conv1dOptions options_;
  Tensor weight_, bias_;
  std::vector<int64_t> pads_;  // nn::pad's {left, right}, from the options
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : Module("Flatten"), start_(start_dim), end_(end_dim) {}
  // std::out_of_range for a dim outside x's, std::invalid_argument when start_dim comes after end_dim.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "start_dim=1, end_dim=-1"

 private:
  int64_t start_, end_;
};

}  // namespace chainrule::nn
