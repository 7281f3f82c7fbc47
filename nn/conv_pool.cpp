#include "nn/conv.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "nn/conv_detail.h"

namespace chainrule::nn {

using namespace conv_detail;

namespace {

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

Pool2d::Pool2d(const char* name, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding)
    : Module(name), kernel_(kernel_size.v), stride_(stride ? stride->v : kernel_size.v), padding_(padding.v) {
  pool_window(kernel_, stride_, padding_, name);
}
std::string Pool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", pair_str(kernel_), pair_str(stride_), pair_str(padding_));
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_); }
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_, stride_, padding_); }

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
