#pragma once
// Pooling over images [N, C, H, W] and over signals [N, C, L], as torch.nn's MaxPool2d, AvgPool2d,
// the adaptive pools and their 1-d twins, with torch's options and defaults. Compositions of
// autograd ops (max_pool2d, unfold, sum, mean, nn::pad; see autograd/ops.h): no derivative is
// defined here.
//
//   max_pool2d: the maximum of each window (per channel; autograd's max_pool2d op); padding counts
//               as -inf (never chosen); the gradient goes to the first maximum, as PyTorch's.
//               dilation spreads the window's taps (torch's).
//   avg_pool2d: the mean of each window, padding's zeros included (count_include_pad = true, torch's
//               default); count_include_pad = false divides by the window's elements inside the
//               image; divisor_override divides every window by that number instead.
//   ceil_mode:  (both; torch's) the output size rounds up, OH = ceil((H + 2 ph - dh (kh - 1) - 1) / sh) + 1,
//               less one if the last window would start past the image and its left padding; the
//               windows that reach past the padded image are clipped (for avg_pool2d with
//               count_include_pad, the divisor counts the window up to the end of the padding).
//               Without it OH rounds down, as conv2d's.
//   adaptive_avg_pool2d: [N, C, H, W] -> [N, C, OH, OW] whatever H and W: cell (i, j) is the mean of
//               rows floor(i H / OH) .. ceil((i + 1) H / OH) - 1 and the same for columns (torch's
//               windows, which overlap when OH does not divide H); [1, 1] is the global average.
//   adaptive_max_pool2d: the same windows' maxima; the gradient goes to each window's first maximum
//               in row-major order (torch's, and max_pool2d's; not max()'s, which shares a tie).
//   the 1-d family (max_pool1d, avg_pool1d, adaptive_avg_pool1d, adaptive_max_pool1d): the 2-d op
//               over x viewed as [N, C, 1, L], the result viewed back as [N, C, OL].
//
//   std::make_shared<nn::MaxPool2d>(2)                                           // 2x2, stride 2
//   std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true))
//   nn::avg_pool2d(x, nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false))
//
// Sources: nn/conv_pool.cpp.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "nn/module.h"

namespace chainrule::nn {

// A size given as one number (square) or as {rows, columns}.
struct Size2d {
  Size2d(int64_t n) : v{n, n} {}  // NOLINT(google-explicit-constructor)
  Size2d(int64_t rows, int64_t columns) : v{rows, columns} {}
  std::array<int64_t, 2> v;
};

// torch's pooling options (LibTorch's MaxPool2dOptions, AvgPool2dOptions and their 1-d twins), S
// being Size2d or int64_t: the kernel, a stride (default: the kernel), padding (default 0, at most
// half the kernel), and
//   max pools: dilation (default 1) and ceil_mode (default false);
//   avg pools: ceil_mode, count_include_pad (default true) and divisor_override (default none;
//   not 0; as torch, a negative one is taken and divides by it).
// The values are checked where they are used (a layer's constructor, a function's call), with
// std::invalid_argument naming the op and the window.
template <class S>
struct MaxPoolOptions {
  MaxPoolOptions(S kernel_size) : kernel_(kernel_size), stride_(kernel_size) {}  // NOLINT(google-explicit-constructor)
  MaxPoolOptions& stride(S s) { stride_ = s; return *this; }
  MaxPoolOptions& padding(S p) { padding_ = p; return *this; }
  MaxPoolOptions& dilation(S d) { dilation_ = d; return *this; }
  MaxPoolOptions& ceil_mode(bool on) { ceil_mode_ = on; return *this; }
  const S& kernel_size() const { return kernel_; }
  const S& stride() const { return stride_; }
  const S& padding() const { return padding_; }
  const S& dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }

 private:
  S kernel_, stride_, padding_ = 0, dilation_ = 1;
  bool ceil_mode_ = false;
};

template <class S>
struct AvgPoolOptions {
  AvgPoolOptions(S kernel_size) : kernel_(kernel_size), stride_(kernel_size) {}  // NOLINT(google-explicit-constructor)
  AvgPoolOptions& stride(S s) { stride_ = s; return *this; }
  AvgPoolOptions& padding(S p) { padding_ = p; return *this; }
  AvgPoolOptions& ceil_mode(bool on) { ceil_mode_ = on; return *this; }
  AvgPoolOptions& count_include_pad(bool on) { count_include_pad_ = on; return *this; }
  AvgPoolOptions& divisor_override(int64_t d) { divisor_override_ = d; return *this; }
  const S& kernel_size() const { return kernel_; }
  const S& stride() const { return stride_; }
  const S& padding() const { return padding_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }
  const std::optional<int64_t>& divisor_override() const { return divisor_override_; }

 private:
  S kernel_, stride_, padding_ = 0;
  bool ceil_mode_ = false, count_include_pad_ = true;
  std::optional<int64_t> divisor_override_;
};

using MaxPool2dOptions = MaxPoolOptions<Size2d>;
using AvgPool2dOptions = AvgPoolOptions<Size2d>;
using MaxPool1dOptions = MaxPoolOptions<int64_t>;
using AvgPool1dOptions = AvgPoolOptions<int64_t>;

// x [N, C, H, W] -> [N, C, OH, OW]. stride defaults to the kernel (as torch's); padding at most half
// the kernel (torch's rule).
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride = {},
                  std::array<int64_t, 2> padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride = {},
                  std::array<int64_t, 2> padding = {0, 0});
Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options);
Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& options);
// output_size >= 1 each, and H, W >= 1 (std::invalid_argument naming the op and the sizes).
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);
// The same checks. One max_pool2d where the sizes divide; otherwise one dim at a time: each row's
// maxima over the column windows, then the maxima of those over the row windows (max_pool2d over
// each window, or, along a dim whose output is larger than the input, one max_pool2d over every
// window's one or two elements). A window's first maximum in row-major order is the topmost row's
// first maximum, so the gradient goes where torch's adaptive_max_pool2d sends it. A NaN in a window
// is its maximum.
Tensor adaptive_max_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// x [N, C, L] -> [N, C, OL]; as the 2-d pools.
Tensor max_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride = {}, int64_t padding = 0);
Tensor avg_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride = {}, int64_t padding = 0);
Tensor max_pool1d(const Tensor& x, const MaxPool1dOptions& options);
Tensor avg_pool1d(const Tensor& x, const AvgPool1dOptions& options);
// x [N, C, L] -> [N, C, output_size], torch's windows along L; output_size >= 1 and L >= 1.
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size);
Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size);

// The pooling layers: the options checked at construction (std::invalid_argument). extra_repr:
// "kernel_size=[2, 2], stride=[2, 2], padding=[0, 0]", then the options that are not torch's
// defaults (", dilation=[2, 2]", ", ceil_mode=true", ", count_include_pad=false",
// ", divisor_override=4").
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2d kernel_size, std::optional<Size2d> stride = {}, Size2d padding = 0);
  explicit MaxPool2d(const MaxPool2dOptions& options);
  Tensor forward(const Tensor& x) override;
  const MaxPool2dOptions& options() const { return options_; }
  std::string extra_repr() const override;

 private:
  MaxPool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2d kernel_size, std::optional<Size2d> stride = {}, Size2d padding = 0);
  explicit AvgPool2d(const AvgPool2dOptions& options);
  Tensor forward(const Tensor& x) override;
  const AvgPool2dOptions& options() const { return options_; }
  std::string extra_repr() const override;

 private:
  AvgPool2dOptions options_;
};

class MaxPool1d : public Module {
 public:
  explicit MaxPool1d(int64_t kernel_size, std::optional<int64_t> stride = {}, int64_t padding = 0);
  explicit MaxPool1d(const MaxPool1dOptions& options);
  Tensor forward(const Tensor& x) override;
  const MaxPool1dOptions& options() const { return options_; }
  std::string extra_repr() const override;  // "kernel_size=[2], stride=[2], padding=[0]" and the rest

 private:
  MaxPool1dOptions options_;
};

class AvgPool1d : public Module {
 public:
  explicit AvgPool1d(int64_t kernel_size, std::optional<int64_t> stride = {}, int64_t padding = 0);
  explicit AvgPool1d(const AvgPool1dOptions& options);
  Tensor forward(const Tensor& x) override;
  const AvgPool1dOptions& options() const { return options_; }
  std::string extra_repr() const override;

 private:
  AvgPool1dOptions options_;
};

// The adaptive pooling layers' shared part: the output size, checked at construction
// (std::invalid_argument for a size below 1).
class AdaptivePool2d : public Module {
 public:
  std::string extra_repr() const override;  // "output_size=[1, 1]"

 protected:
  AdaptivePool2d(const char* name, Size2d output_size);
  std::array<int64_t, 2> output_size_;
};

class AdaptiveAvgPool2d : public AdaptivePool2d {
 public:
  explicit AdaptiveAvgPool2d(Size2d output_size) : AdaptivePool2d("AdaptiveAvgPool2d", output_size) {}
  Tensor forward(const Tensor& x) override;
};

class AdaptiveMaxPool2d : public AdaptivePool2d {
 public:
  explicit AdaptiveMaxPool2d(Size2d output_size) : AdaptivePool2d("AdaptiveMaxPool2d", output_size) {}
  Tensor forward(const Tensor& x) override;
};

// The 1-d adaptive pooling layers' shared part: output_size >= 1, checked at construction.
class AdaptivePool1d : public Module {
 public:
  std::string extra_repr() const override;  // "output_size=[4]"

 protected:
  AdaptivePool1d(const char* name, int64_t output_size);
  int64_t output_size_;
};

class AdaptiveAvgPool1d : public AdaptivePool1d {
 public:
  explicit AdaptiveAvgPool1d(int64_t output_size) : AdaptivePool1d("AdaptiveAvgPool1d", output_size) {}
  Tensor forward(const Tensor& x) override;
};

class AdaptiveMaxPool1d : public AdaptivePool1d {
 public:
  explicit AdaptiveMaxPool1d(int64_t output_size) : AdaptivePool1d("AdaptiveMaxPool1d", output_size) {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace chainrule::nn
