#pragma once
// What the convolution and padding tests share: deterministic float64 inputs and the
// convolutions of the definition, one output element at a time, as plain loops.
#include <array>
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"
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

}  // namespace chainrule::testing
