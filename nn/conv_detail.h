#pragma once
// Internal to nn/conv.cpp, nn/conv_layers.cpp and nn/conv_pool.cpp (not installed API): the input
// checks, the 1-d window and the padding that the convolutions and the pools share.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/conv.h"
#include "nn/pad.h"

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

// The pads a layer (or conv2d / conv1d given kSame or kValid, `layer` naming it) applies, in
// nn::pad's order (last dim first, {before, after} each): {p, p} for numbers, none for kValid, and
// for kSame d (k - 1) in all, the extra one after (torch's split). The arrays are in dim order
// (rows, then columns).
template <std::size_t D>
inline std::vector<int64_t> layer_pads(const char* layer, const std::optional<Padding>& kind,
                                const std::array<int64_t, D>& padding, const std::array<int64_t, D>& kernel,
                                const std::array<int64_t, D>& dilation, const std::array<int64_t, D>& stride) {
  if (kind == Padding::Same)
    for (int64_t s : stride)
      if (s != 1)
        throw std::invalid_argument(fmt::format(
            "{}: padding=same is not supported for strided convolutions (as torch), got stride [{}]", layer,
            fmt::join(stride, ", ")));
  std::vector<int64_t> pads;
  pads.reserve(2 * D);
  for (std::size_t i = D; i-- > 0;) {
    int64_t total = 0;
    if (kind == Padding::Same && __builtin_mul_overflow(dilation[i], kernel[i] - 1, &total))
      throw std::invalid_argument(fmt::format("{}: padding=same overflows: dilation {} times kernel {} - 1", layer,
                                              dilation[i], kernel[i]));
    const int64_t before = kind ? total / 2 : padding[i], after = kind ? total - total / 2 : padding[i];
    pads.push_back(before);
    pads.push_back(after);
  }
  return pads;
}

// Whether the convolution's own padding does the layer's: zeros, as many before as after in every
// dim (the path layers took before padding modes).
inline bool conv_pads_itself(PaddingMode mode, const std::vector<int64_t>& pads) {
  if (mode != PaddingMode::Zeros) return false;
  for (std::size_t i = 0; i < pads.size(); i += 2)
    if (pads[i] != pads[i + 1]) return false;
  return true;
}

// x padded as the layer's mode says, for a convolution without padding of its own.
inline Tensor padded_input(const Tensor& x, const std::vector<int64_t>& pads, PaddingMode mode) {
  switch (mode) {
    case PaddingMode::Zeros: return pad(x, pads, PadMode::Constant, 0.0);
    case PaddingMode::Reflect: return pad(x, pads, PadMode::Reflect);
    case PaddingMode::Replicate: return pad(x, pads, PadMode::Replicate);
    case PaddingMode::Circular: return pad(x, pads, PadMode::Circular);
  }
  return x;
}

// [N, C, L] as [N, C, 1, L], and back.
inline Tensor as_image(const Tensor& x) { return unsqueeze(x, 2); }
inline Tensor as_signal(Tensor y) {
  const std::vector<int64_t> shape{y.size(0), y.size(1), y.size(3)};
  return reshape(std::move(y), shape);
}

}  // namespace chainrule::nn::conv_detail
