#pragma once
// The plain-double reference of MultiheadAttention (torch's multi_head_attention_forward written out
// per batch and head), shared by the attention tests. Header-only.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "nn/attention.h"
#include "nn/dense.h"
#include "nn/normalization.h"
#include "tests/autograd/testing.h"

namespace chainrule::testing::attention {

using Vec = std::vector<double>;
// The additive mask at batch n, head h, query i, key j.
using Bias = std::function<double(std::size_t n, std::size_t h, std::size_t i, std::size_t j)>;
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// A float64 tensor of uniform numbers in [-2, 2), the same for the same seed.
inline Tensor input(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  testing::Numbers numbers(seed);
  return from_vector(numbers.uniform_vector(static_cast<std::size_t>(shape.numel()), -2, 2), shape,
                     TensorOptions(DType::float64).requires_grad(requires_grad));
}

// Element by element, to 1e-12.
inline void check_close(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(1e-12));
  }
}

// torch's multi_head_attention_forward with plain numbers. Inputs batch-major: query [N, L, E],
// key [N, S, kdim], value [N, S, vdim]; returns the output [N, L, E] and the weights [N, H, L, S].
struct Reference {
  Vec output, weights;
};
inline Reference reference(const nn::MultiheadAttention& m, const Tensor& query, const Tensor& key, const Tensor& value,
                    const Bias& bias) {
  const std::size_t e = std::size_t(m.options().embed_dim()), heads = std::size_t(m.options().num_heads()), d = e / heads;
  const std::size_t n = std::size_t(query.size(0)), l = std::size_t(query.size(1)), s = std::size_t(key.size(1));
  const auto weight = [&](std::size_t block) {
    const Tensor w = m.in_proj_weight().defined() ? m.in_proj_weight()
                                                  : (block == 0 ? m.q_proj_weight() : block == 1 ? m.k_proj_weight() : m.v_proj_weight());
    const Vec all = w.to_vector();
    const std::size_t in = std::size_t(w.size(1)), first = m.in_proj_weight().defined() ? block * e : 0;
    return std::make_pair(Vec(all.begin() + std::ptrdiff_t(first * in), all.begin() + std::ptrdiff_t((first + e) * in)), in);
  };
  const Vec b_in = m.in_proj_bias().defined() ? m.in_proj_bias().to_vector() : Vec(3 * e, 0.0);
  // Row t of x (batch b) projected by block `block`: e numbers.
  const auto project = [&](const Tensor& x, std::size_t block) {
    const auto [w, in] = weight(block);
    const Vec xs = x.to_vector();
    const std::size_t rows = std::size_t(x.size(0) * x.size(1));
    Vec y(rows * e);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t f = 0; f < e; ++f) {
        double acc = b_in[block * e + f];
        for (std::size_t c = 0; c < in; ++c) acc += w[f * in + c] * xs[r * in + c];
        y[r * e + f] = acc;
      }
    return y;
  };
  const Vec q = project(query, 0), k = project(key, 1), v = project(value, 2);
  const Vec w_out = m.out_proj()->weight().to_vector();
  const Vec b_out = m.out_proj()->bias().defined() ? m.out_proj()->bias().to_vector() : Vec(e, 0.0);
  Reference r{Vec(n * l * e, 0.0), Vec(n * heads * l * s, 0.0)};
  for (std::size_t b = 0; b < n; ++b) {
    Vec concat(l * e, 0.0);
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t i = 0; i < l; ++i) {
        Vec row(s);
        double mx = -kInf;
        for (std::size_t j = 0; j < s; ++j) {
          double dot = 0;
          for (std::size_t c = 0; c < d; ++c) dot += q[(b * l + i) * e + h * d + c] * k[(b * s + j) * e + h * d + c];
          row[j] = dot / std::sqrt(double(d)) + bias(b, h, i, j);
          mx = std::max(mx, row[j]);
        }
        if (mx == -kInf) continue;
        double z = 0;
        for (double x : row) z += std::exp(x - mx);
        for (std::size_t j = 0; j < s; ++j) {
          const double p = std::exp(row[j] - mx) / z;
          r.weights[((b * heads + h) * l + i) * s + j] = p;
          for (std::size_t c = 0; c < d; ++c) concat[i * e + h * d + c] += p * v[(b * s + j) * e + h * d + c];
        }
      }
    }
    for (std::size_t i = 0; i < l; ++i)
      for (std::size_t f = 0; f < e; ++f) {
        double acc = b_out[f];
        for (std::size_t c = 0; c < e; ++c) acc += w_out[f * e + c] * concat[i * e + c];
        r.output[(b * l + i) * e + f] = acc;
      }
  }
  return r;
}


// A Dense layer on rows of plain numbers: x [rows, in] -> [rows, out].
inline Vec dense_ref(const Vec& x, const nn::Dense& layer) {
  const std::size_t in = std::size_t(layer.options().in_features()), out = std::size_t(layer.options().out_features());
  const Vec w = layer.weight().to_vector();
  const Vec b = layer.bias().defined() ? layer.bias().to_vector() : Vec(out, 0.0);
  Vec y(x.size() / in * out);
  for (std::size_t r = 0; r < x.size() / in; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double acc = b[o];
      for (std::size_t c = 0; c < in; ++c) acc += w[o * in + c] * x[r * in + c];
      y[r * out + o] = acc;
    }
  return y;
}

// A LayerNorm over the last dim of rows of plain numbers (variance biased, as torch).
inline Vec layer_norm_ref(const Vec& x, const nn::LayerNorm& norm) {
  const Vec w = norm.weight().to_vector();
  const std::size_t d = w.size();
  const Vec b = norm.bias().defined() ? norm.bias().to_vector() : Vec(d, 0.0);
  Vec y(x.size());
  for (std::size_t r = 0; r < x.size() / d; ++r) {
    double mean = 0, var = 0;
    for (std::size_t c = 0; c < d; ++c) mean += x[r * d + c] / double(d);
    for (std::size_t c = 0; c < d; ++c) var += (x[r * d + c] - mean) * (x[r * d + c] - mean) / double(d);
    for (std::size_t c = 0; c < d; ++c)
      y[r * d + c] = (x[r * d + c] - mean) / std::sqrt(var + norm.options().eps()) * w[c] + b[c];
  }
  return y;
}

}  // namespace chainrule::testing::attention
