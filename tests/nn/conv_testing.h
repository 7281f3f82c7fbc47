#pragma once
// What the convolution and padding tests share: deterministic float64 inputs and the
// convolutions of the definition, one output element at a time, as plain loops.
#include <array>
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"
#include "nn/pad.h"
#include "tests/autograd/testing.h"

namespace chainrule::testing {

// Uniform numbers in [-1, 1), float64, from a seed.
inline Tensor numbers(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  Numbers rng(seed);
  return from_vector(rng.uniform_vector(static_cast<std::size_t>(shape.numel()), -1, 1), shape,
                     TensorOptions(DType::float64).requires_grad(requires_grad));
}

inline std::size_t at(int64_t i) { return static_cast<std::size_t>(i); }

// The definition, one output element at a time; with groups, output channel oc reads the input
// channels of its group, (oc / (O / groups)) * (C / groups) + ci for ci < C / groups.
inline std::vector<double> conv_by_loops(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> s,
                                         std::array<int64_t, 2> p, std::array<int64_t, 2> d, int64_t oh, int64_t ow,
                                         int64_t groups = 1) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3), o = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t cg = c / groups, og = o / groups;
  const std::vector<double> xs = x.to_vector(), ws = w.to_vector(), bs = b.defined() ? b.to_vector() : std::vector<double>(at(o), 0.0);
  std::vector<double> out;
  for (int64_t bi = 0; bi < n; ++bi)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t z = 0; z < ow; ++z) {
          double acc = bs[at(oc)];
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t py = y * s[0] - p[0] + i * d[0], px = z * s[1] - p[1] + j * d[1];
                if (py < 0 || py >= h || px < 0 || px >= wd) continue;
                const int64_t channel = (oc / og) * cg + ci;
                acc += ws[at(((oc * cg + ci) * kh + i) * kw + j)] * xs[at(((bi * c + channel) * h + py) * wd + px)];
              }
          out.push_back(acc);
        }
  return out;
}

// conv1d's definition, one output element at a time: y[n, o, t] = b[o] + sum_c,j w[o, c, j] x[n, c', t s - p + j d],
// with groups c' = (o / (O / groups)) * (C / groups) + c for c < C / groups (c' = c without).
inline std::vector<double> conv1d_by_loops(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t p,
                                           int64_t d, int64_t ol, int64_t groups = 1) {
  const int64_t n = x.size(0), c = x.size(1), l = x.size(2), o = w.size(0), cg = w.size(1), k = w.size(2);
  const int64_t og = o / groups;
  const std::vector<double> xs = x.to_vector(), ws = w.to_vector(), bs = b.defined() ? b.to_vector() : std::vector<double>(at(o), 0.0);
  std::vector<double> out;
  for (int64_t bi = 0; bi < n; ++bi)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t t = 0; t < ol; ++t) {
        double acc = bs[at(oc)];
        for (int64_t ci = 0; ci < cg; ++ci)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t pos = t * s - p + j * d, channel = (oc / og) * cg + ci;
            if (pos >= 0 && pos < l) acc += ws[at((oc * cg + ci) * k + j)] * xs[at((bi * c + channel) * l + pos)];
          }
        out.push_back(acc);
      }
  return out;
}

// The source of output position i (input coordinates) along a dim of size n, by the modes'
// definitions written as loops: -1 for the constant border.
inline int64_t pad_source(nn::PadMode mode, int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case nn::PadMode::Constant: return -1;
    case nn::PadMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;  // mirrored, the edge not repeated
    case nn::PadMode::Replicate: return i < 0 ? 0 : n - 1;
    case nn::PadMode::Circular: return ((i % n) + n) % n;
  }
  return -1;
}

// x [N, C, H, W] padded by (top, bottom, left, right) in a mode, by plain loops over pad_source.
inline Tensor pad_by_loops(const Tensor& x, std::array<int64_t, 4> tblr, nn::PadMode mode) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = h + tblr[0] + tblr[1], ow = w + tblr[2] + tblr[3];
  const std::vector<double> xs = x.to_vector();
  std::vector<double> out;
  for (int64_t plane = 0; plane < n * c; ++plane)
    for (int64_t i = -tblr[0]; i < oh - tblr[0]; ++i)
      for (int64_t j = -tblr[2]; j < ow - tblr[2]; ++j) {
        const int64_t si = pad_source(mode, i, h), sj = pad_source(mode, j, w);
        out.push_back(si < 0 || sj < 0 ? 0.0 : xs[at((plane * h + si) * w + sj)]);
      }
  return from_vector(out, {n, c, oh, ow}, DType::float64);
}

}  // namespace chainrule::testing
