#include "nn/conv.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

namespace chainrule::nn {

namespace {

std::string pair_str(const std::array<int64_t, 2>& p) { return fmt::format("[{}, {}]", p[0], p[1]); }

void check_batch(const Tensor& x, const char* op, const char* expected, int dims) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  if (x.dim() != dims) throw std::invalid_argument(fmt::format("{}: expected {}, got {}", op, expected, x.shape().str()));
}
void check_image(const Tensor& x, const char* op) { check_batch(x, op, "an image batch [N, C, H, W]", 4); }
void check_signal(const Tensor& x, const char* op) { check_batch(x, op, "a batch of signals [N, C, L]", 3); }

// conv1d's and conv2d's operands: the weight [O, C, k...] (`expected` spells it), x's channels,
// the bias [O] and the dtypes.
void check_conv_operands(const Tensor& x, const Tensor& weight, const Tensor& bias, const char* op,
                         const char* expected) {
  if (!weight.defined() || weight.dim() != x.dim())
    throw std::invalid_argument(fmt::format("{}: expected a weight {}, got {}", op, expected,
                                            weight.defined() ? weight.shape().str() : "an undefined tensor"));
  const int64_t o = weight.size(0), c = weight.size(1);
  if (x.size(1) != c)
    throw std::invalid_argument(fmt::format("{}: the input {} has {} channels but the weight {} expects {}", op,
                                            x.shape().str(), x.size(1), weight.shape().str(), c));
  if (bias.defined() && bias.shape() != Shape{o})
    throw std::invalid_argument(fmt::format("{}: bias has shape {}, expected [{}] (the weight's out channels)", op,
                                            bias.shape().str(), o));
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && t->dtype() != x.dtype())
      throw std::invalid_argument(fmt::format("{}: the input is {} but the {} is {}; convert one with .to()", op,
                                              dtype_name(x.dtype()), t == &weight ? "weight" : "bias",
                                              dtype_name(t->dtype())));
}

// A pooling window: stride defaults to the kernel; padding at most half the kernel (torch's rule:
// a window never lies in the padding alone).
Window2d pool_window(std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                     std::array<int64_t, 2> padding, const char* op) {
  const Window2d w{.kernel = kernel, .stride = stride.value_or(kernel), .padding = padding};
  w.check(op);
  for (int k = 0; k < 2; ++k)
    if (w.padding[k] > w.kernel[k] / 2)
      throw std::invalid_argument(fmt::format("{}: padding {} must be at most half the kernel {}", op,
                                              pair_str(w.padding), pair_str(w.kernel)));
  return w;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation) {
  check_image(x, "conv2d");
  check_conv_operands(x, weight, bias, "conv2d", "[O, C, kh, kw]");
  const int64_t o = weight.size(0);
  const Window2d w{.kernel = {weight.size(2), weight.size(3)}, .stride = stride, .padding = padding, .dilation = dilation};
  const Tensor columns = unfold(x, w);  // [N, C * kh * kw, OH * OW]; checks the window
  const int64_t n = x.size(0), k = columns.size(1);
  const auto [oh, ow] = w.output_size(x.size(2), x.size(3));
  // [O, K] @ [N, K, L], the weight broadcast over the batch: N products, each image's written in
  // place in [N, O, L] (no permute of the columns or of the result), and in the backward the
  // weight's gradient added up product by product (matmul's rule for a shared operand).
  Tensor y = matmul(reshape(weight, {o, k}), columns);
  if (bias.defined()) y = y + reshape(bias, {o, 1});
  return reshape(std::move(y), {n, o, oh, ow});
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                  std::array<int64_t, 2> padding) {
  // The op checks the input and the window (its padding rule included).
  return chainrule::max_pool2d(x, {.kernel = kernel, .stride = stride.value_or(kernel), .padding = padding});
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                  std::array<int64_t, 2> padding) {
  check_image(x, "avg_pool2d");
  const Window2d w = pool_window(kernel, stride, padding, "avg_pool2d");
  // Each channel's windows as columns, [N * C, kh * kw, OH * OW], averaged over each column.
  const int64_t n = x.size(0), c = x.size(1);
  const Tensor columns = unfold(reshape(x, {n * c, 1, x.size(2), x.size(3)}), w);
  const auto [oh, ow] = w.output_size(x.size(2), x.size(3));
  return reshape(mean(columns, {1}), {n, c, oh, ow});
}

namespace {

void check_output_size(std::array<int64_t, 2> size, const char* op) {
  if (size[0] < 1 || size[1] < 1)
    throw std::invalid_argument(fmt::format("{}: the output size must be >= 1 in each dim, got {}", op, pair_str(size)));
}

// Adaptive pooling's checks: an image batch with a non-empty image, an output size >= 1 each.
void check_adaptive(const Tensor& x, std::array<int64_t, 2> output_size, const char* op) {
  check_image(x, op);
  check_output_size(output_size, op);
  if (x.size(2) < 1 || x.size(3) < 1)
    throw std::invalid_argument(
        fmt::format("{}: the input {} has an empty image (H and W must be >= 1)", op, x.shape().str()));
}

// max_pool2d's and avg_pool2d's signature.
using Pool2dOp = Tensor (*)(const Tensor&, std::array<int64_t, 2>, std::optional<std::array<int64_t, 2>>,
                            std::array<int64_t, 2>);

// Pools x [N, C, H, W] along dim 2 (rows) or 3 (columns) alone, into `out` of torch's adaptive
// windows: window i spans floor(i size / out) .. ceil((i + 1) size / out) - 1, so windows overlap
// when `out` does not divide the size. One pooling op when it divides, else one per window.
Tensor adaptive_pool_along(const Tensor& x, int dim, int64_t out, Pool2dOp pool) {
  const int64_t size = x.size(dim);
  if (out == size) return x;
  const auto kernel = [dim](int64_t k) { return dim == 2 ? std::array<int64_t, 2>{k, 1} : std::array<int64_t, 2>{1, k}; };
  if (size % out == 0) return pool(x, kernel(size / out), {}, {0, 0});
  std::vector<Tensor> cells;
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = i * size / out, stop = ((i + 1) * size + out - 1) / out;
    cells.push_back(pool(slice(x, dim, start, stop), kernel(stop - start), {}, {0, 0}));
  }
  return concat(cells, dim);
}

// A cell's mean (or maximum) is the mean (maximum) over its rows of each row's mean (maximum)
// over the cell's columns: so the column windows (dim 3) first, then the row windows (dim 2),
// OH + OW pooling ops where cell by cell would take OH * OW. For max the order matters: the first
// of the rows' maxima is in the topmost row that holds the window's maximum, at that row's first
// maximum, i.e. the window's first maximum in row-major order (max_pool2d's and torch's). Rows
// first would send the gradient to the leftmost column's topmost maximum instead.
Tensor adaptive_pool2d(const Tensor& x, std::array<int64_t, 2> output_size, Pool2dOp pool) {
  return adaptive_pool_along(adaptive_pool_along(x, 3, output_size[1], pool), 2, output_size[0], pool);
}

}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  check_adaptive(x, output_size, "adaptive_avg_pool2d");
  const int64_t h = x.size(2), w = x.size(3);
  const auto [oh, ow] = output_size;
  if (oh == 1 && ow == 1) return mean(x, {2, 3}, /*keepdim=*/true);
  // Windows of one size at a regular step: one pooling op.
  if (h % oh == 0 && w % ow == 0) return avg_pool2d(x, {h / oh, w / ow});
  return adaptive_pool2d(x, output_size, avg_pool2d);
}

Tensor adaptive_max_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  check_adaptive(x, output_size, "adaptive_max_pool2d");
  const int64_t h = x.size(2), w = x.size(3);
  const auto [oh, ow] = output_size;
  if (h % oh == 0 && w % ow == 0) return max_pool2d(x, std::array<int64_t, 2>{h / oh, w / ow});
  return adaptive_pool2d(x, output_size, max_pool2d);
}

AdaptivePool2d::AdaptivePool2d(const char* name, Size2d output_size) : Module(name), output_size_(output_size.v) {
  check_output_size(output_size_, name);
}
std::string AdaptivePool2d::extra_repr() const { return fmt::format("output_size={}", pair_str(output_size_)); }
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size_); }
Tensor AdaptiveMaxPool2d::forward(const Tensor& x) { return adaptive_max_pool2d(x, output_size_); }

namespace {

// The end of a convolution layer's extra_repr: ", bias=false" and ", dtype=float64" where they
// are not the defaults.
std::string weight_bias_repr(bool bias, const Tensor& weight) {
  std::string s = bias ? "" : ", bias=false";
  if (weight.defined() && weight.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight.dtype()));
  return s;
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
  weight_ = register_parameter("weight", zeros({out, in, kh, kw}, options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros({out}, options.dtype()));
  options.init_weight_bias(weight_, bias_, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  check_image(x, "Conv2d::forward");
  if (x.size(1) != options_.in_channels())
    throw std::invalid_argument(fmt::format("Conv2d::forward: expected an input [N, {}, H, W] (in_channels={}), got {}",
                                            options_.in_channels(), options_.in_channels(), x.shape().str()));
  check_input_dtype("Conv2d::forward", x, weight_);
  return conv2d(x, weight_, bias_, options_.stride(), options_.padding(), options_.dilation());
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", options_.in_channels(), options_.out_channels(),
                              pair_str(options_.kernel_size()), pair_str(options_.stride()));
  if (options_.padding() != std::array<int64_t, 2>{0, 0}) s += ", padding=" + pair_str(options_.padding());
  if (options_.dilation() != std::array<int64_t, 2>{1, 1}) s += ", dilation=" + pair_str(options_.dilation());
  return s + weight_bias_repr(options_.bias(), weight_);
}

Pool2d::Pool2d(const char* name, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding)
    : Module(name), kernel_(kernel_size.v), stride_(stride ? stride->v : kernel_size.v), padding_(padding.v) {
  pool_window(kernel_, stride_, padding_, name);
}
std::string Pool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", pair_str(kernel_), pair_str(stride_), pair_str(padding_));
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_); }
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_, stride_, padding_); }

namespace {

// A window along L of a signal [N, C, L], checked and reported in 1-d terms, and the same window
// over the image [N, C, 1, L] that the 2-d ops see.
struct Window1d {
  int64_t kernel, stride, padding, dilation = 1;

  std::string str() const {
    return fmt::format("kernel {}, stride {}, padding {}, dilation {}", kernel, stride, padding, dilation);
  }
  Window2d as_2d() const {
    return {.kernel = {1, kernel}, .stride = {1, stride}, .padding = {0, padding}, .dilation = {1, dilation}};
  }
  void check(const char* op) const {
    if (kernel < 1 || stride < 1 || padding < 0 || dilation < 1)
      throw std::invalid_argument(
          fmt::format("{}: kernel, stride and dilation must be >= 1 and padding >= 0, got {}", op, str()));
  }
  // A pooling window: padding at most half the kernel (torch's rule), as pool_window's.
  void check_pool(const char* op) const {
    check(op);
    if (padding > kernel / 2)
      throw std::invalid_argument(fmt::format("{}: padding {} must be at most half the kernel {}", op, padding, kernel));
  }
  // x [N, C, L] padded reaches over the dilated kernel (no overflow on the way).
  void check_length(const Tensor& x, const char* op) const {
    int64_t span = 0, padded = 0;
    if (__builtin_mul_overflow(dilation, kernel - 1, &span) || __builtin_add_overflow(span, 1, &span) ||
        __builtin_mul_overflow(padding, 2, &padded) || __builtin_add_overflow(padded, x.size(2), &padded))
      throw std::invalid_argument(fmt::format("{}: the window's sizes overflow 64-bit arithmetic: {}", op, str()));
    if (padded < span)
      throw std::invalid_argument(
          fmt::format("{}: the input {} is shorter than the window ({}): its padded length {} is below the dilated "
                      "kernel's {}",
                      op, x.shape().str(), str(), padded, span));
  }
};

// [N, C, L] as [N, C, 1, L], and back.
Tensor as_image(const Tensor& x) { return unsqueeze(x, 2); }
Tensor as_signal(Tensor y) {
  const std::vector<int64_t> shape{y.size(0), y.size(1), y.size(3)};
  return reshape(std::move(y), shape);
}

Tensor pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding, const char* op,
              Pool2dOp pool) {
  check_signal(x, op);
  const Window1d w{.kernel = kernel, .stride = stride.value_or(kernel), .padding = padding};
  w.check_pool(op);
  w.check_length(x, op);
  const Window2d image = w.as_2d();
  return as_signal(pool(as_image(x), image.kernel, image.stride, image.padding));
}

void check_output_size(int64_t size, const char* op) {
  if (size < 1) throw std::invalid_argument(fmt::format("{}: the output size must be >= 1, got {}", op, size));
}

Tensor adaptive_pool1d(const Tensor& x, int64_t output_size, const char* op,
                       Tensor (*pool)(const Tensor&, std::array<int64_t, 2>)) {
  check_signal(x, op);
  check_output_size(output_size, op);
  if (x.size(2) < 1)
    throw std::invalid_argument(fmt::format("{}: the input {} is empty along L (L must be >= 1)", op, x.shape().str()));
  return as_signal(pool(as_image(x), {1, output_size}));
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation) {
  check_signal(x, "conv1d");
  check_conv_operands(x, weight, bias, "conv1d", "[O, C, k]");
  const Window1d w{.kernel = weight.size(2), .stride = stride, .padding = padding, .dilation = dilation};
  w.check("conv1d");
  w.check_length(x, "conv1d");
  const Window2d image = w.as_2d();
  return as_signal(conv2d(as_image(x), unsqueeze(weight, 2), bias, image.stride, image.padding, image.dilation));
}

Tensor max_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding) {
  return pool1d(x, kernel, stride, padding, "max_pool1d", max_pool2d);
}
Tensor avg_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding) {
  return pool1d(x, kernel, stride, padding, "avg_pool1d", avg_pool2d);
}
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool1d(x, output_size, "adaptive_avg_pool1d", adaptive_avg_pool2d);
}
Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool1d(x, output_size, "adaptive_max_pool1d", adaptive_max_pool2d);
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
  weight_ = register_parameter("weight", zeros({out, in, k}, options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros({out}, options.dtype()));
  options.init_weight_bias(weight_, bias_, gen);
}

Tensor Conv1d::forward(const Tensor& x) {
  check_signal(x, "Conv1d::forward");
  if (x.size(1) != options_.in_channels())
    throw std::invalid_argument(fmt::format("Conv1d::forward: expected an input [N, {}, L] (in_channels={}), got {}",
                                            options_.in_channels(), options_.in_channels(), x.shape().str()));
  check_input_dtype("Conv1d::forward", x, weight_);
  return conv1d(x, weight_, bias_, options_.stride(), options_.padding(), options_.dilation());
}

std::string Conv1d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size=[{}], stride=[{}]", options_.in_channels(), options_.out_channels(),
                              options_.kernel_size(), options_.stride());
  if (options_.padding() != 0) s += fmt::format(", padding=[{}]", options_.padding());
  if (options_.dilation() != 1) s += fmt::format(", dilation=[{}]", options_.dilation());
  return s + weight_bias_repr(options_.bias(), weight_);
}

Pool1d::Pool1d(const char* name, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding)
    : Module(name), kernel_(kernel_size), stride_(stride.value_or(kernel_size)), padding_(padding) {
  Window1d{.kernel = kernel_, .stride = stride_, .padding = padding_}.check_pool(name);
}
std::string Pool1d::extra_repr() const {
  return fmt::format("kernel_size=[{}], stride=[{}], padding=[{}]", kernel_, stride_, padding_);
}
Tensor MaxPool1d::forward(const Tensor& x) { return max_pool1d(x, kernel_, stride_, padding_); }
Tensor AvgPool1d::forward(const Tensor& x) { return avg_pool1d(x, kernel_, stride_, padding_); }

AdaptivePool1d::AdaptivePool1d(const char* name, int64_t output_size) : Module(name), output_size_(output_size) {
  check_output_size(output_size_, name);
}
std::string AdaptivePool1d::extra_repr() const { return fmt::format("output_size=[{}]", output_size_); }
Tensor AdaptiveAvgPool1d::forward(const Tensor& x) { return adaptive_avg_pool1d(x, output_size_); }
Tensor AdaptiveMaxPool1d::forward(const Tensor& x) { return adaptive_max_pool1d(x, output_size_); }

Tensor Flatten::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Flatten::forward: the input is undefined");
  if (x.dim() == 0) return reshape(x, {1});  // as torch.flatten of a 0-d tensor
  const int start = normalize_dim(start_, x.dim(), "Flatten::forward"), end = normalize_dim(end_, x.dim(), "Flatten::forward");
  if (start > end)
    throw std::invalid_argument(fmt::format("Flatten::forward: start_dim {} comes after end_dim {} for an input {}",
                                            start_, end_, x.shape().str()));
  std::vector<int64_t> shape;
  for (int i = 0; i < start; ++i) shape.push_back(x.size(i));
  int64_t merged = 1;
  for (int i = start; i <= end; ++i) merged *= x.size(i);
  shape.push_back(merged);
  for (int i = end + 1; i < x.dim(); ++i) shape.push_back(x.size(i));
  return reshape(x, shape);
}
std::string Flatten::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", start_, end_); }

}  // namespace chainrule::nn
