#pragma once
// Internal to nn/conv.cpp and nn/conv_pool.cpp (not installed API): the input checks and the 1-d
// window that the convolutions and the pools share.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace chainrule::nn::conv_detail {

inline std::string pair_str(const std::array<int64_t, 2>& p) { return fmt::format("[{}, {}]", p[0], p[1]); }

inline void check_batch(const Tensor& x, const char* op, const char* expected, int dims) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  if (x.dim() != dims) throw std::invalid_argument(fmt::format("{}: expected {}, got {}", op, expected, x.shape().str()));
}
inline void check_image(const Tensor& x, const char* op) { check_batch(x, op, "an image batch [N, C, H, W]", 4); }
inline void check_signal(const Tensor& x, const char* op) { check_batch(x, op, "a batch of signals [N, C, L]", 3); }

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
inline Tensor as_image(const Tensor& x) { return unsqueeze(x, 2); }
inline Tensor as_signal(Tensor y) {
  const std::vector<int64_t> shape{y.size(0), y.size(1), y.size(3)};
  return reshape(std::move(y), shape);
}

}  // namespace chainrule::nn::conv_detail
