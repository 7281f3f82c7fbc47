// Sliding-window ops: unfold (im2col) copies each window of an image into a column, fold (col2im)
// adds columns back into an image, max_pool2d keeps each window's maximum. Each rule is written
// with ops, so a recorded backward (create_graph) works to any order:
//   unfold:      y = columns of x's windows          dx = fold(grad, x's size)
//   fold:        y = columns added back per pixel     dcolumns = unfold(grad)
//   max_pool2d:  y = each window's maximum           dx = grad added at each maximum's place
//                                                    (index_add into zeros; its rule is index_select)
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <limits>
#include <stdexcept>
#include <vector>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

std::string Window2d::str() const {
  return fmt::format("kernel [{}, {}], stride [{}, {}], padding [{}, {}], dilation [{}, {}]", kernel[0], kernel[1],
                     stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]);
}

void Window2d::check(const char* op) const {
  for (int k = 0; k < 2; ++k)
    if (kernel[k] < 1 || stride[k] < 1 || padding[k] < 0 || dilation[k] < 1)
      throw std::invalid_argument(
          fmt::format("{}: kernel, stride and dilation must be >= 1 and padding >= 0, got {}", op, str()));
}

namespace {

// Sizes no tensor can have would overflow int64 on the way (undefined behaviour): refused first,
// with this error.
std::invalid_argument overflow_error(const Window2d& win, const char* op, const std::string& what) {
  return std::invalid_argument(
      fmt::format("{}: the window's sizes overflow 64-bit arithmetic: {} with {}", op, win.str(), what));
}

// The windows along each dim of an image [h, w], after check(): [OH, OW]. `what` names the image
// in the errors ("the input [1, 1, 2, 4]").
std::array<int64_t, 2> windows(const Window2d& win, int64_t h, int64_t w, const char* op, const std::string& what) {
  win.check(op);
  std::array<int64_t, 2> out;
  const int64_t size[2] = {h, w};
  for (int k = 0; k < 2; ++k) {
    int64_t span = 0, padded = 0;
    if (__builtin_mul_overflow(win.dilation[k], win.kernel[k] - 1, &span) || __builtin_add_overflow(span, 1, &span) ||
        __builtin_mul_overflow(win.padding[k], 2, &padded) || __builtin_add_overflow(padded, size[k], &padded))
      throw overflow_error(win, op, what);
    if (padded < span)
      throw std::invalid_argument(fmt::format(
          "{}: {} is smaller than the window ({}): the padded size {} of dim {} is below the dilated kernel's {}", op,
          what, win.str(), padded, k + 2, span));
    out[k] = (padded - span) / win.stride[k] + 1;
  }
  return out;
}

// The geometry of one unfold/fold: image [n, c, h, w], windows [oh, ow], rows c * kh * kw.
struct Geometry {
  int64_t n, c, h, w, oh, ow;
  Window2d win;
  int64_t rows() const { return c * win.kernel[0] * win.kernel[1]; }
  int64_t length() const { return oh * ow; }
};

// Checks the window and the image size; returns the geometry (n and c are the caller's).
Geometry geometry(int64_t n, int64_t c, int64_t h, int64_t w, const Window2d& win, const char* op,
                  const std::string& what) {
  const auto [oh, ow] = windows(win, h, w, op, what);
  int64_t total = 0;  // the columns' elements: n * c * kh * kw * oh * ow
  if (__builtin_mul_overflow(n, c, &total) || __builtin_mul_overflow(total, win.kernel[0], &total) ||
      __builtin_mul_overflow(total, win.kernel[1], &total) || __builtin_mul_overflow(total, oh, &total) ||
      __builtin_mul_overflow(total, ow, &total))
    throw overflow_error(win, op, what);
  return {n, c, h, w, oh, ow, win};
}

}  // namespace

std::array<int64_t, 2> Window2d::output_size(int64_t h, int64_t w) const {
  return windows(*this, h, w, "Window2d::output_size", fmt::format("the image [{}, {}]", h, w));
}

namespace {

// The outputs z in [lo, hi) of `count` whose tap z * stride + offset lies in [0, extent).
std::pair<int64_t, int64_t> inside(int64_t offset, int64_t stride, int64_t extent, int64_t count) {
  const int64_t lo = std::min(count, offset >= 0 ? 0 : (-offset + stride - 1) / stride);
  const int64_t hi = std::min(count, offset >= extent ? 0 : (extent - 1 - offset) / stride + 1);
  return {lo, std::max(lo, hi)};
}

// Walks the columns [N, C * kh * kw, OH * OW] row by row, one output row (y) at a time: calls
// run(image offset, column offset, count) for each stretch of `count` column entries whose pixels
// are inside the image (the pixels `stride[1]` apart from the image offset on), and gap(column
// offset, count) for the stretches in the padding. Clipping each stretch once keeps the inner
// loops free of bounds checks (a stride-1 run is a plain copy).
template <class Run, class Gap>
void for_each_run(const Geometry& g, Run&& run, Gap&& gap) {
  const auto [kh, kw] = g.win.kernel;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t ch = 0; ch < g.c; ++ch) {
      const int64_t image = (b * g.c + ch) * g.h * g.w;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t row = (ch * kh + i) * kw + j;
          const int64_t column = (b * g.rows() + row) * g.length();
          const int64_t offset = j * g.win.dilation[1] - g.win.padding[1];  // px = x * stride + offset
          const auto [lo, hi] = inside(offset, g.win.stride[1], g.w, g.ow);
          for (int64_t y = 0; y < g.oh; ++y) {
            const int64_t py = y * g.win.stride[0] - g.win.padding[0] + i * g.win.dilation[0];
            const int64_t to = column + y * g.ow;
            if (py < 0 || py >= g.h) {
              gap(to, g.ow);
              continue;
            }
            if (lo > 0) gap(to, lo);
            if (hi > lo) run(image + py * g.w + lo * g.win.stride[1] + offset, to + lo, hi - lo);
            if (hi < g.ow) gap(to + hi, g.ow - hi);
          }
        }
    }
}

// The geometry of an op on an image batch x [N, C, H, W] (checked: defined, 4-D, the window).
Geometry image_geometry(const Tensor& x, const Window2d& window, const char* op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined", op));
  if (x.dim() != 4)
    throw std::invalid_argument(fmt::format("{}: expected an image batch [N, C, H, W], got {}", op, x.shape().str()));
  return geometry(x.size(0), x.size(1), x.size(2), x.size(3), window, op, fmt::format("the input {}", x.shape().str()));
}

}  // namespace

Tensor unfold(const Tensor& x, const Window2d& window, Where where) {
  const Geometry g = image_geometry(x, window, "unfold");
  Tensor result = detail::empty(Shape{g.n, g.rows(), g.length()}, x.dtype());
  detail::dispatch(x.dtype(), [&]<class T>() {
    const T* in = x.impl()->data<T>();
    T* out = result.impl()->data<T>();
    const int64_t stride = g.win.stride[1];
    for_each_run(
        g,
        [&](int64_t from, int64_t to, int64_t count) {
          if (stride == 1) std::copy(in + from, in + from + count, out + to);
          else
            for (int64_t k = 0; k < count; ++k) out[to + k] = in[from + k * stride];
        },
        [&](int64_t to, int64_t count) { std::fill(out + to, out + to + count, T(0)); });  // the padding's taps
  });
  if (!detail::should_record({&x})) {
    detail::check_forward(result, "unfold", where);
    return result;
  }
  const std::array<int64_t, 2> size{g.h, g.w};
  detail::record(result, "unfold", {&x}, [size, window](const Tensor& grad, detail::Node&) {
    return std::vector<Tensor>{fold(grad, size, window)};
  }, where);
  detail::set_replay(result, {x}, [window, where](const std::vector<Tensor>& in) { return unfold(in[0], window, where); });
  return result;
}

Tensor fold(const Tensor& columns, std::array<int64_t, 2> output_size, const Window2d& window, Where where) {
  if (!columns.defined()) throw std::invalid_argument("fold: the tensor is undefined");
  const int64_t taps = window.kernel[0] * window.kernel[1];
  if (columns.dim() != 3 || taps < 1 || columns.size(1) % taps != 0)
    throw std::invalid_argument(fmt::format(
        "fold: expected columns [N, C * {} * {}, L] (the kernel's size), got {}", window.kernel[0], window.kernel[1],
        columns.shape().str()));
  if (output_size[0] < 0 || output_size[1] < 0)
    throw std::invalid_argument(
        fmt::format("fold: the output size [{}, {}] is negative", output_size[0], output_size[1]));
  const Geometry g = geometry(columns.size(0), columns.size(1) / taps, output_size[0], output_size[1], window, "fold",
                              fmt::format("the output size [{}, {}]", output_size[0], output_size[1]));
  if (columns.size(2) != g.length())
    throw std::invalid_argument(fmt::format(
        "fold: columns {} hold {} windows, but an output [{}, {}] with {} has {} x {} = {}", columns.shape().str(),
        columns.size(2), g.h, g.w, window.str(), g.oh, g.ow, g.length()));
  Tensor result = detail::empty(Shape{g.n, g.c, g.h, g.w}, columns.dtype());
  detail::dispatch(columns.dtype(), [&]<class T>() {
    const T* in = columns.impl()->data<T>();
    T* out = result.impl()->data<T>();
    std::fill(out, out + result.numel(), T(0));
    const int64_t stride = g.win.stride[1];
    for_each_run(
        g,
        [&](int64_t to, int64_t from, int64_t count) {
          if (stride == 1)
            for (int64_t k = 0; k < count; ++k) out[to + k] += in[from + k];
          else
            for (int64_t k = 0; k < count; ++k) out[to + k * stride] += in[from + k];
        },
        [](int64_t, int64_t) {});
  });
  if (!detail::should_record({&columns})) {
    detail::check_forward(result, "fold", where);
    return result;
  }
  detail::record(result, "fold", {&columns}, [window](const Tensor& grad, detail::Node&) {
    return std::vector<Tensor>{unfold(grad, window)};
  }, where);
  detail::set_replay(result, {columns}, [output_size, window, where](const std::vector<Tensor>& in) {
    return fold(in[0], output_size, window, where);
  });
  return result;
}

namespace {

// Selects without a data-dependent branch: on real data `v > best` goes either way, and a
// mispredicted branch per tap costs more than the rest of the loop (GCC branches on `take ? v : b`).
template <class T>
struct MaxSelect {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  // The new value when `take`, else the old one; the same for the place.
  static void take_if(bool take, T v, int64_t v_at, T& best, int64_t& at) {
    const Bits keep = Bits(take) - 1;  // all ones where the old values stay
    best = std::bit_cast<T>((std::bit_cast<Bits>(v) & ~keep) | (std::bit_cast<Bits>(best) & keep));
    const auto keep_at = static_cast<int64_t>(keep);
    at = (v_at & ~keep_at) | (at & keep_at);
  }
};

// One output row of the 2x2, stride-2 window on float32 (the usual CNN pooling) from its two image
// rows: each output's maximum and which of its four taps holds it (0 to 3, row-major), written
// so that GCC vectorises it: the same choices as below, in int32 (the floats' width) for the taps.
void max_of_2x2(const float* __restrict top, const float* __restrict bottom, float* __restrict best,
                int32_t* __restrict tap, int count) {
  for (int z = 0; z < count; ++z) {
    const float v[4] = {top[2 * z], top[2 * z + 1], bottom[2 * z], bottom[2 * z + 1]};
    float m = v[0];
    int32_t at = 0;
    for (int32_t k = 1; k < 4; ++k) {
      const bool take = (v[k] > m) | (v[k] != v[k]);
      m = take ? v[k] : m;
      at = take ? k : at;
    }
    best[z] = m;
    tap[z] = at;
  }
}

void max_pool_2x2(const Geometry& g, const float* in, float* out, int64_t* place) {
  constexpr int kChunk = 256;
  int32_t tap[kChunk];
  for (int64_t plane = 0; plane < g.n * g.c; ++plane)
    for (int64_t y = 0; y < g.oh; ++y) {
      const int64_t top = (plane * g.h + 2 * y) * g.w;  // the windows' first row, flat in `in`
      const int64_t first = (plane * g.oh + y) * g.ow;  // the row's first output
      for (int64_t z0 = 0; z0 < g.ow; z0 += kChunk) {
        const int count = static_cast<int>(std::min<int64_t>(kChunk, g.ow - z0));
        max_of_2x2(in + top + 2 * z0, in + top + g.w + 2 * z0, out + first + z0, tap, count);
        for (int z = 0; z < count; ++z)
          place[first + z0 + z] = top + 2 * (z0 + z) + (tap[z] & 1) + (tap[z] >> 1) * g.w;
      }
    }
}

// max_pool_kernel without padding: every window lies wholly in the image, so each output's
// maximum is found in registers, window by window, starting from the window's first tap. KH and
// KW fix the kernel at compile time (0: the window's own), so that a 2x2 window is four loads and
// three selects. The same choices as max_pool_kernel: the first maximum in (i, j) order, or the
// last NaN.
template <class T, int64_t KH, int64_t KW>
void max_pool_inside(const Geometry& g, const T* in, T* out, int64_t* place) {
  const int64_t h = g.h, wd = g.w, oh = g.oh, ow = g.ow;
  const int64_t kh = KH ? KH : g.win.kernel[0], kw = KW ? KW : g.win.kernel[1];
  const auto [sh, sw] = g.win.stride;
  const auto [dh, dw] = g.win.dilation;
  for (int64_t plane = 0; plane < g.n * g.c; ++plane) {
    for (int64_t y = 0; y < oh; ++y) {
      const int64_t top = plane * h * wd + y * sh * wd;  // the windows' first row, flat in `in`
      T* best = out + (plane * oh + y) * ow;
      int64_t* where = place + (plane * oh + y) * ow;
      for (int64_t z = 0; z < ow; ++z) {
        const int64_t first = top + z * sw;
        T b = in[first];
        int64_t at = first;
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            if (i == 0 && j == 0) continue;
            const int64_t p = first + i * dh * wd + j * dw;
            const T v = in[p];
            MaxSelect<T>::take_if((v > b) | (v != v), v, p, b, at);
          }
        best[z] = b;
        where[z] = at;
      }
    }
  }
}

// Each window's maximum into out and its flat index in `in` into place (-1 for a window wholly in
// the padding). Per output row, tap by tap ((i, j) in order, so the first maximum wins ties as in
// PyTorch), across the row's outputs, which clips each tap's range to the image once.
template <class T>
void max_pool_kernel(const Geometry& g, const T* in, T* out, int64_t* place) {
  const int64_t h = g.h, wd = g.w, oh = g.oh, ow = g.ow;
  const auto [kh, kw] = g.win.kernel;
  const auto [sh, sw] = g.win.stride;
  const auto [ph, pw] = g.win.padding;
  const auto [dh, dw] = g.win.dilation;
  for (int64_t plane = 0; plane < g.n * g.c; ++plane) {
    const T* image = in + plane * h * wd;
    for (int64_t y = 0; y < oh; ++y) {
      T* best = out + (plane * oh + y) * ow;
      int64_t* at = place + (plane * oh + y) * ow;
      std::fill(best, best + ow, -std::numeric_limits<T>::infinity());
      std::fill(at, at + ow, int64_t{-1});
      for (int64_t i = 0; i < kh; ++i) {
        const int64_t py = y * sh - ph + i * dh;
        if (py < 0 || py >= h) continue;
        const T* row = image + py * wd;
        const int64_t base = plane * h * wd + py * wd;
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t offset = j * dw - pw;  // px = z * sw + offset, in [0, wd) for z in [lo, hi)
          const auto [lo, hi] = inside(offset, sw, wd, ow);
          for (int64_t z = lo; z < hi; ++z) {
            const int64_t px = z * sw + offset;
            const T v = row[px];
            // The first maximum, or a NaN.
            MaxSelect<T>::take_if((v > best[z]) | (v != v) | (at[z] < 0), v, base + px, best[z], at[z]);
          }
        }
      }
    }
  }
}

// The pooling rule on numbers, for the sweep that records nothing: zeros of `shape` with grad[k]
// added at from[k], without the flat copies the composed rule makes around index_add.
Tensor scatter_to(const Tensor& grad, const std::vector<int64_t>& from, const Shape& shape) {
  Tensor dx = zeros(shape, grad.dtype());
  detail::dispatch(grad.dtype(), [&]<class T>() {
    const T* g = grad.impl()->data<T>();
    T* d = dx.impl()->data<T>();
    for (std::size_t k = 0; k < from.size(); ++k) d[from[k]] += g[k];
  });
  return dx;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Window2d& window, Where where) {
  const Geometry g = image_geometry(x, window, "max_pool2d");
  for (int k = 0; k < 2; ++k)
    if (window.padding[k] > window.kernel[k] / 2)
      throw std::invalid_argument(fmt::format("max_pool2d: the padding must be at most half the kernel, got {}",
                                              window.str()));
  Tensor result = detail::empty(Shape{g.n, g.c, g.oh, g.ow}, x.dtype());
  // Where each maximum came from, as a flat index into x (-1: a window wholly in the padding).
  std::vector<int64_t> from(static_cast<std::size_t>(result.numel()));
  detail::dispatch(x.dtype(), [&]<class T>() {
    const T* in = x.impl()->data<T>();
    T* out = result.impl()->data<T>();
    using Pair = std::array<int64_t, 2>;
    const bool two = window.kernel == Pair{2, 2};
    if (window.padding != Pair{0, 0}) {
      max_pool_kernel(g, in, out, from.data());
    } else if (two && window.stride == Pair{2, 2} && window.dilation == Pair{1, 1}) {
      if constexpr (std::is_same_v<T, float>) max_pool_2x2(g, in, out, from.data());
      else max_pool_inside<T, 2, 2>(g, in, out, from.data());
    } else if (two) {
      max_pool_inside<T, 2, 2>(g, in, out, from.data());
    } else {
      max_pool_inside<T, 0, 0>(g, in, out, from.data());
    }
  });
  if (!detail::should_record({&x})) {
    detail::check_forward(result, "max_pool2d", where);
    return result;
  }
  // The outputs that have a maximum, and their places: a window wholly in the padding (possible
  // with dilation) passes no gradient. Without padding every window has one (no scan).
  const bool all_found = window.padding == std::array<int64_t, 2>{0, 0} ||
                         std::find(from.begin(), from.end(), int64_t{-1}) == from.end();
  std::vector<int64_t> outputs;
  if (!all_found) {
    std::vector<int64_t> places;
    for (std::size_t k = 0; k < from.size(); ++k)
      if (from[k] >= 0) {
        outputs.push_back(static_cast<int64_t>(k));
        places.push_back(from[k]);
      }
    from = std::move(places);
  }
  detail::record(result, "max_pool2d", {&x},
                 [shape = x.shape(), from = std::move(from), outputs = std::move(outputs), all_found](
                     const Tensor& grad, detail::Node&) {
                   // dx[from[k]] += grad[k] (grad[outputs[k]] when some window found no maximum).
                   if (!GradMode::enabled() && all_found) return std::vector<Tensor>{scatter_to(grad, from, shape)};
                   Tensor flat = reshape(grad, {-1});
                   if (!all_found) flat = index_select(flat, 0, outputs);
                   return std::vector<Tensor>{
                       reshape(index_add(zeros({shape.numel()}, grad.dtype()), 0, from, flat), shape.to_vector())};
                 },
                 where);
  detail::set_replay(result, {x}, [window, where](const std::vector<Tensor>& in) { return max_pool2d(in[0], window, where); });
  return result;
}

}  // namespace chainrule
