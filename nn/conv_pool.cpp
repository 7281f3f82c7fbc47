#include "nn/conv.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "nn/conv_detail.h"
#include "nn/pad.h"

namespace chainrule::nn {

using namespace conv_detail;

namespace {

// A pooling window: stride defaults to the kernel; padding at most half the kernel (torch's rule:
// a window never lies in the padding alone).
Window2d pool_window(std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                     std::array<int64_t, 2> padding, const char* op, std::array<int64_t, 2> dilation = {1, 1}) {
  const Window2d w{.kernel = kernel, .stride = stride.value_or(kernel), .padding = padding, .dilation = dilation};
  w.check(op);
  for (int k = 0; k < 2; ++k)
    if (w.padding[k] > w.kernel[k] / 2)
      throw std::invalid_argument(fmt::format("{}: padding {} must be at most half the kernel {}", op,
                                              pair_str(w.padding), pair_str(w.kernel)));
  return w;
}

void check_output_size(std::array<int64_t, 2> size, const char* op) {
  if (size[0] < 1 || size[1] < 1)
    throw std::invalid_argument(fmt::format("{}: the output size must be >= 1 in each dim, got {}", op, pair_str(size)));
}

// Whether the adaptive windows of `out` cells over `size` overflow: adaptive_pool_along's bounds
// reach (i + 1) size + out - 1 < out (size + 1) for i < out.
bool reach_overflows(int64_t out, int64_t size) {
  int64_t reach = 0;
  return __builtin_mul_overflow(out, size + 1, &reach);
}

// Adaptive pooling's checks: an image batch with a non-empty image, an output size >= 1 each.
void check_adaptive(const Tensor& x, std::array<int64_t, 2> output_size, const char* op) {
  check_image(x, op);
  check_output_size(output_size, op);
  if (x.size(2) < 1 || x.size(3) < 1)
    throw std::invalid_argument(
        fmt::format("{}: the input {} has an empty image (H and W must be >= 1)", op, x.shape().str()));
  if (reach_overflows(output_size[0], x.size(2)) || reach_overflows(output_size[1], x.size(3)))
    throw std::invalid_argument(fmt::format("{}: the output size {} for the input {} overflows 64-bit arithmetic", op,
                                            pair_str(output_size), x.shape().str()));
}

// max_pool2d's and avg_pool2d's signature.
using Pool2dOp = Tensor (*)(const Tensor&, std::array<int64_t, 2>, std::optional<std::array<int64_t, 2>>,
                            std::array<int64_t, 2>);

// Pools x [N, C, H, W] along dim 2 (rows) or 3 (columns) alone, into `out` of torch's adaptive
// windows: window i spans floor(i size / out) .. ceil((i + 1) size / out) - 1, so windows overlap
// when `out` does not divide the size. One pooling op when it divides; when out > size (each
// window one or two elements) one index_select of the windows' pairs and one pooling op; else one
// per window.
Tensor adaptive_pool_along(const Tensor& x, int dim, int64_t out, Pool2dOp pool) {
  const int64_t size = x.size(dim);
  if (out == size) return x;
  const auto kernel = [dim](int64_t k) { return dim == 2 ? std::array<int64_t, 2>{k, 1} : std::array<int64_t, 2>{1, k}; };
  if (size % out == 0) return pool(x, kernel(size / out), {}, {0, 0});
  if (out > size) {
    // Per window op, an output far larger than the input (torch takes any) made `out` ops, about a
    // kilobyte each. Here a one-element window pairs its element with one appended after the
    // last that changes no window: -inf for a maximum (never chosen), 0 for a sum, which is then
    // divided by the window's length (a / 1 and (a + b) / 2, torch's sums over its lengths).
    const bool max = pool == static_cast<Pool2dOp>(max_pool2d);
    const Tensor extended = pad(x, dim == 3 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0, 0, 0, 1},
                                PadMode::Constant, max ? -std::numeric_limits<double>::infinity() : 0.0);
    std::vector<int64_t> pairs;
    std::vector<double> lengths;
    pairs.reserve(static_cast<size_t>(2 * out));  // at once: an output too large for memory fails here
    lengths.reserve(static_cast<size_t>(out));
    for (int64_t i = 0; i < out; ++i) {
      const int64_t start = i * size / out, stop = ((i + 1) * size + out - 1) / out;
      pairs.insert(pairs.end(), {start, stop - start == 2 ? start + 1 : size});
      lengths.push_back(static_cast<double>(stop - start));
    }
    const Tensor taken = index_select(extended, dim, pairs);
    if (max) return max_pool2d(taken, kernel(2));
    const Tensor sums = avg_pool2d(taken, AvgPool2dOptions(Size2d(kernel(2)[0], kernel(2)[1])).divisor_override(1));
    return sums / from_vector(lengths, dim == 3 ? Shape{out} : Shape{out, 1}, TensorOptions(x.dtype()));
  }
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



[[noreturn]] void throw_overflow(const Window2d& w, const char* op) {
  throw std::invalid_argument(fmt::format("{}: the window's sizes overflow 64-bit arithmetic: {}", op, w.str()));
}

// ceil_mode along one dim of size `in` (torch's pooling_output_shape): the rows (or columns) of
// padding to add after the image so that the windows counted rounding down are those torch counts
// rounding up; 0 when none is needed, or when no window fits even so (the op then reports the sizes).
int64_t ceil_extra(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, const Window2d& w, const char* op) {
  int64_t span = 0, padded = 0, top = 0;
  if (__builtin_mul_overflow(d, k - 1, &span) || __builtin_add_overflow(span, 1, &span) ||
      __builtin_mul_overflow(p, 2, &padded) || __builtin_add_overflow(padded, in, &padded) ||
      __builtin_add_overflow(padded - span, s - 1, &top))
    throw_overflow(w, op);
  if (top < 0) return 0;
  int64_t out = top / s + 1;
  if ((out - 1) * s >= in + p) --out;  // the last window would start past the image and its left padding
  int64_t reach = 0;                   // where the last window ends, in the padded image
  if (__builtin_add_overflow((out - 1) * s, span, &reach)) throw_overflow(w, op);
  return std::max<int64_t>(0, reach - padded);
}

// x [N, C, H, W] with ceil_mode's extra rows and columns after the image (filled with `value`).
Tensor ceil_padded(const Tensor& x, const Window2d& w, bool ceil_mode, double value, const char* op) {
  if (!ceil_mode) return x;
  const int64_t eh = ceil_extra(x.size(2), w.kernel[0], w.stride[0], w.padding[0], w.dilation[0], w, op);
  const int64_t ew = ceil_extra(x.size(3), w.kernel[1], w.stride[1], w.padding[1], w.dilation[1], w, op);
  if (eh == 0 && ew == 0) return x;
  int64_t h = 0, wd = 0, elements = 0;
  if (__builtin_add_overflow(x.size(2), eh, &h) || __builtin_add_overflow(x.size(3), ew, &wd) ||
      __builtin_mul_overflow(x.size(0) * x.size(1), h, &elements) || __builtin_mul_overflow(elements, wd, &elements))
    throw_overflow(w, op);
  return pad(x, {0, ew, 0, eh}, PadMode::Constant, value);
}

// The pools on images, the window checked by the caller.
Tensor max_pool_image(const Tensor& x, const Window2d& w, bool ceil_mode, const char* op) {
  // The op checks the sizes (and reads its padding as -inf, as the extra rows of ceil_mode).
  return chainrule::max_pool2d(ceil_padded(x, w, ceil_mode, -std::numeric_limits<double>::infinity(), op), w);
}

struct AvgChoice {
  bool ceil_mode = false, count_include_pad = true;
  std::optional<int64_t> divisor_override;
};

// torch's divisor of each window along one dim: its size up to the end of the padding
// (count_include_pad), or its size inside the image.
std::vector<int64_t> window_counts(int64_t in, int64_t k, int64_t s, int64_t p, int64_t out, bool include_pad) {
  std::vector<int64_t> counts(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = i * s - p, end = std::min(start + k, in + p);
    counts[static_cast<size_t>(i)] = include_pad ? end - start : std::min(end, in) - std::max<int64_t>(start, 0);
  }
  return counts;
}

Tensor avg_pool_image(const Tensor& x, const Window2d& w, const AvgChoice& c, const char* op) {
  if (c.divisor_override && *c.divisor_override == 0)
    throw std::invalid_argument(fmt::format("{}: divisor_override must not be 0", op));
  const Tensor padded = ceil_padded(x, w, c.ceil_mode, 0.0, op);
  // Each channel's windows as columns, [N * C, kh * kw, OH * OW], averaged over each column.
  const int64_t n = x.size(0), ch = x.size(1), h = padded.size(2), wd = padded.size(3);
  const Tensor columns = unfold(reshape(padded, {n * ch, 1, h, wd}), w);
  const auto [oh, ow] = w.output_size(h, wd);
  if (!c.ceil_mode && c.count_include_pad && !c.divisor_override) return reshape(mean(columns, {1}), {n, ch, oh, ow});
  std::vector<double> divisor(static_cast<size_t>(oh * ow), static_cast<double>(c.divisor_override.value_or(0)));
  if (!c.divisor_override) {
    const auto rows = window_counts(x.size(2), w.kernel[0], w.stride[0], w.padding[0], oh, c.count_include_pad);
    const auto cols = window_counts(x.size(3), w.kernel[1], w.stride[1], w.padding[1], ow, c.count_include_pad);
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        divisor[static_cast<size_t>(i * ow + j)] = static_cast<double>(rows[static_cast<size_t>(i)] * cols[static_cast<size_t>(j)]);
  }
  const Tensor sums = sum(columns, {1});  // [N * C, OH * OW]
  return reshape(sums / from_vector(divisor, {oh * ow}, TensorOptions(x.dtype())), {n, ch, oh, ow});
}

// A 1-d pool's window, checked in 1-d terms, as the window over [N, C, 1, L]. The length is checked
// here without ceil_mode (the message in 1-d terms); with it the 2-d op reports a window too long.
Window2d pool1d_window(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                       bool ceil_mode, const char* op) {
  check_signal(x, op);
  const Window1d w{.kernel = kernel, .stride = stride, .padding = padding, .dilation = dilation};
  w.check_pool(op);
  if (!ceil_mode) w.check_length(x, op);
  return w.as_2d();
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
  if (reach_overflows(output_size, x.size(2)))
    throw std::invalid_argument(fmt::format("{}: the output size {} for the input {} overflows 64-bit arithmetic", op,
                                            output_size, x.shape().str()));
  return as_signal(pool(as_image(x), {1, output_size}));
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                  std::array<int64_t, 2> padding) {
  // The op checks the input and the window (its padding rule included).
  return chainrule::max_pool2d(x, {.kernel = kernel, .stride = stride.value_or(kernel), .padding = padding});
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::optional<std::array<int64_t, 2>> stride,
                  std::array<int64_t, 2> padding) {
  check_image(x, "avg_pool2d");
  return avg_pool_image(x, pool_window(kernel, stride, padding, "avg_pool2d"), {}, "avg_pool2d");
}

Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& o) {
  check_image(x, "max_pool2d");
  const Window2d w = pool_window(o.kernel_size().v, o.stride().v, o.padding().v, "max_pool2d", o.dilation().v);
  return max_pool_image(x, w, o.ceil_mode(), "max_pool2d");
}

Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& o) {
  check_image(x, "avg_pool2d");
  const Window2d w = pool_window(o.kernel_size().v, o.stride().v, o.padding().v, "avg_pool2d");
  return avg_pool_image(x, w, {o.ceil_mode(), o.count_include_pad(), o.divisor_override()}, "avg_pool2d");
}

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

std::string size_str(const Size2d& s) { return pair_str(s.v); }
std::string size_str(int64_t s) { return fmt::format("[{}]", s); }

template <class S>
bool is_one(const S& s) {
  if constexpr (std::is_same_v<S, Size2d>) return s.v == std::array<int64_t, 2>{1, 1};
  else return s == 1;
}

// "kernel_size=..., stride=..., padding=..." and the options that are not torch's defaults.
template <class S>
std::string pool_repr(const MaxPoolOptions<S>& o) {
  return fmt::format("kernel_size={}, stride={}, padding={}{}{}", size_str(o.kernel_size()), size_str(o.stride()),
                     size_str(o.padding()), is_one(o.dilation()) ? "" : ", dilation=" + size_str(o.dilation()),
                     o.ceil_mode() ? ", ceil_mode=true" : "");
}
template <class S>
std::string pool_repr(const AvgPoolOptions<S>& o) {
  return fmt::format("kernel_size={}, stride={}, padding={}{}{}{}", size_str(o.kernel_size()), size_str(o.stride()),
                     size_str(o.padding()), o.ceil_mode() ? ", ceil_mode=true" : "",
                     o.count_include_pad() ? "" : ", count_include_pad=false",
                     o.divisor_override() ? fmt::format(", divisor_override={}", *o.divisor_override()) : "");
}

// The layers check their window when built, as the functions do at each call.
void check_divisor(const std::optional<int64_t>& divisor, const char* name) {
  if (divisor && *divisor == 0) throw std::invalid_argument(fmt::format("{}: divisor_override must not be 0", name));
}
void check_1d(int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, const char* name) {
  Window1d{.kernel = kernel, .stride = stride, .padding = padding, .dilation = dilation}.check_pool(name);
}

}  // namespace

MaxPool2d::MaxPool2d(Size2d kernel_size, std::optional<Size2d> stride, Size2d padding)
    : MaxPool2d(MaxPool2dOptions(kernel_size).stride(stride.value_or(kernel_size)).padding(padding)) {}
MaxPool2d::MaxPool2d(const MaxPool2dOptions& options) : Module("MaxPool2d"), options_(options) {
  pool_window(options.kernel_size().v, options.stride().v, options.padding().v, "MaxPool2d", options.dilation().v);
}
std::string MaxPool2d::extra_repr() const { return pool_repr(options_); }
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, options_); }

AvgPool2d::AvgPool2d(Size2d kernel_size, std::optional<Size2d> stride, Size2d padding)
    : AvgPool2d(AvgPool2dOptions(kernel_size).stride(stride.value_or(kernel_size)).padding(padding)) {}
AvgPool2d::AvgPool2d(const AvgPool2dOptions& options) : Module("AvgPool2d"), options_(options) {
  pool_window(options.kernel_size().v, options.stride().v, options.padding().v, "AvgPool2d");
  check_divisor(options.divisor_override(), "AvgPool2d");
}
std::string AvgPool2d::extra_repr() const { return pool_repr(options_); }
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, options_); }

Tensor max_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding) {
  return max_pool1d(x, MaxPool1dOptions(kernel).stride(stride.value_or(kernel)).padding(padding));
}
Tensor avg_pool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding) {
  return avg_pool1d(x, AvgPool1dOptions(kernel).stride(stride.value_or(kernel)).padding(padding));
}
Tensor max_pool1d(const Tensor& x, const MaxPool1dOptions& o) {
  const Window2d w = pool1d_window(x, o.kernel_size(), o.stride(), o.padding(), o.dilation(), o.ceil_mode(), "max_pool1d");
  return as_signal(max_pool_image(as_image(x), w, o.ceil_mode(), "max_pool1d"));
}
Tensor avg_pool1d(const Tensor& x, const AvgPool1dOptions& o) {
  const Window2d w = pool1d_window(x, o.kernel_size(), o.stride(), o.padding(), 1, o.ceil_mode(), "avg_pool1d");
  return as_signal(
      avg_pool_image(as_image(x), w, {o.ceil_mode(), o.count_include_pad(), o.divisor_override()}, "avg_pool1d"));
}

MaxPool1d::MaxPool1d(int64_t kernel_size, std::optional<int64_t> stride, int64_t padding)
    : MaxPool1d(MaxPool1dOptions(kernel_size).stride(stride.value_or(kernel_size)).padding(padding)) {}
MaxPool1d::MaxPool1d(const MaxPool1dOptions& options) : Module("MaxPool1d"), options_(options) {
  check_1d(options.kernel_size(), options.stride(), options.padding(), options.dilation(), "MaxPool1d");
}
std::string MaxPool1d::extra_repr() const { return pool_repr(options_); }
Tensor MaxPool1d::forward(const Tensor& x) { return max_pool1d(x, options_); }

AvgPool1d::AvgPool1d(int64_t kernel_size, std::optional<int64_t> stride, int64_t padding)
    : AvgPool1d(AvgPool1dOptions(kernel_size).stride(stride.value_or(kernel_size)).padding(padding)) {}
AvgPool1d::AvgPool1d(const AvgPool1dOptions& options) : Module("AvgPool1d"), options_(options) {
  check_1d(options.kernel_size(), options.stride(), options.padding(), 1, "AvgPool1d");
  check_divisor(options.divisor_override(), "AvgPool1d");
}
std::string AvgPool1d::extra_repr() const { return pool_repr(options_); }
Tensor AvgPool1d::forward(const Tensor& x) { return avg_pool1d(x, options_); }

Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool1d(x, output_size, "adaptive_avg_pool1d", adaptive_avg_pool2d);
}
Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool1d(x, output_size, "adaptive_max_pool1d", adaptive_max_pool2d);
}

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
