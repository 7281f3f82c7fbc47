#include "nn/pad.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace chainrule::nn {

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::Constant: return "constant";
    case PadMode::Reflect: return "reflect";
    case PadMode::Replicate: return "replicate";
    case PadMode::Circular: return "circular";
  }
  return "?";
}

namespace {

std::string pads_str(const std::vector<int64_t>& pads) { return fmt::format("[{}]", fmt::join(pads, ", ")); }

// One dim's padding: (left, right) on dim `dim` of size n.
struct DimPad {
  int dim;
  int64_t n, left, right;
};

// The input index that output position i (from -left, in input coordinates) copies in a
// non-constant mode; valid for the pads check() allows.
int64_t source(PadMode mode, int64_t i, int64_t n) {
  switch (mode) {
    case PadMode::Reflect: return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
    case PadMode::Replicate: return i < 0 ? 0 : i >= n ? n - 1 : i;
    case PadMode::Circular: return i < 0 ? i + n : i >= n ? i - n : i;
    case PadMode::Constant: break;
  }
  return i;
}

// Every dim's pads checked before any op runs, so a throw records nothing.
void check(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, const DimPad& p) {
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(fmt::format("pad: {} (input {}, pads {}, mode {})", what, x.shape().str(),
                                            pads_str(pads), pad_mode_name(mode)));
  };
  // |pad| <= n or the mode's own bound below hold before n + left + right is formed for the
  // non-constant modes; for constant, huge pads could overflow the sum.
  int64_t size = 0;
  if (__builtin_add_overflow(p.n, p.left, &size) || __builtin_add_overflow(size, p.right, &size))
    fail(fmt::format("the padding ({}, {}) of dim {} overflows its size", p.left, p.right, p.dim));
  if (size < 0)
    fail(fmt::format("the padding ({}, {}) of dim {} (size {}) leaves a negative size {}", p.left, p.right, p.dim, p.n,
                     size));
  // A crop of more than the whole dim (and, with it, -INT64_MIN) has no meaning.
  if (p.left < -p.n || p.right < -p.n)
    fail(fmt::format("the padding ({}, {}) of dim {} crops more than its size {}", p.left, p.right, p.dim, p.n));
  const int64_t widest = std::max(p.left, p.right);
  if (mode == PadMode::Reflect && widest >= p.n)
    fail(fmt::format("reflect padding ({}, {}) of dim {} must be less than its size {}", p.left, p.right, p.dim, p.n));
  if (mode == PadMode::Circular && widest > p.n)
    fail(fmt::format("circular padding ({}, {}) of dim {} wraps around more than once: at most its size {}", p.left,
                     p.right, p.dim, p.n));
  if (mode == PadMode::Replicate && widest > 0 && p.n == 0)
    fail(fmt::format("replicate padding ({}, {}) of dim {} has no edge to repeat: the dim is empty", p.left, p.right,
                     p.dim));
}

// Constant mode: a crop (negative pads) by slice, then the border (positive pads) by concat with
// filled blocks of x's dtype.
Tensor pad_constant(const Tensor& x, const DimPad& p, double value) {
  Tensor y = p.left < 0 || p.right < 0
                 ? slice(x, p.dim, std::max<int64_t>(-p.left, 0), p.n + std::min<int64_t>(p.right, 0))
                 : x;
  if (p.left <= 0 && p.right <= 0) return y;
  std::vector<Tensor> parts;
  const auto border = [&](int64_t width) {
    std::vector<int64_t> shape = y.shape().to_vector();
    shape[static_cast<std::size_t>(p.dim)] = width;
    return full(Shape(shape), value, TensorOptions(x.dtype()));
  };
  if (p.left > 0) parts.push_back(border(p.left));
  parts.push_back(y);
  if (p.right > 0) parts.push_back(border(p.right));
  return concat(parts, p.dim);
}

// The other modes: one index_select of the source of every output position (a crop included).
Tensor pad_by_index(const Tensor& x, const DimPad& p, PadMode mode) {
  std::vector<int64_t> indices;
  for (int64_t i = -p.left; i < p.n + p.right; ++i) indices.push_back(source(mode, i, p.n));
  if (indices.empty()) return slice(x, p.dim, 0, 0);
  return index_select(x, p.dim, indices);
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  if (!x.defined()) throw std::invalid_argument("pad: the input is undefined");
  if (pads.size() % 2 != 0 || pads.size() / 2 > static_cast<std::size_t>(x.dim()))
    throw std::invalid_argument(fmt::format(
        "pad: expected an even number of pads, at most 2 per dim of the input {} ({} dims), got {} pads {}",
        x.shape().str(), x.dim(), pads.size(), pads_str(pads)));
  std::vector<DimPad> dims;
  for (std::size_t k = 0; k < pads.size() / 2; ++k) {
    const int dim = x.dim() - 1 - static_cast<int>(k);
    const DimPad p{dim, x.size(dim), pads[2 * k], pads[2 * k + 1]};
    check(x, pads, mode, p);
    if (p.left != 0 || p.right != 0) dims.push_back(p);
  }
  // The output's bytes, before any index list or border is made: each dim fits (check), but their
  // product may not, and the first dims' lists and blocks would be allocated before the overflow.
  std::vector<int64_t> shape = x.shape().to_vector();
  for (const DimPad& p : dims) shape[static_cast<std::size_t>(p.dim)] = p.n + p.left + p.right;
  int64_t bytes = dtype_size(x.dtype());
  for (int64_t n : shape)
    if (__builtin_mul_overflow(bytes, n, &bytes))
      throw std::invalid_argument(fmt::format("pad: the output [{}] needs more than 2^63 - 1 bytes (input {}, pads {}, "
                                              "mode {})",
                                              fmt::join(shape, ", "), x.shape().str(), pads_str(pads),
                                              pad_mode_name(mode)));
  Tensor y = x;
  for (const DimPad& p : dims) y = mode == PadMode::Constant ? pad_constant(y, p, value) : pad_by_index(y, p, mode);
  return y;
}

}  // namespace chainrule::nn
