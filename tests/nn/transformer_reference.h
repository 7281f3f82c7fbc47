#pragma once
// What the Transformer tests and the LibTorch 1.13 fixtures (transformer_fixtures.h) share: the
// parameter values set by name, the inputs, the masks and the weighted loss. Header-only.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/module.h"
#include "nn/serialize.h"
#include "tests/nn/transformer_fixtures.h"

namespace chainrule::testing::transformer {

// A number from a parameter's name, so that the values do not depend on the parameters' order.
inline double name_hash(const std::string& name) {
  int64_t h = 0;
  for (std::size_t j = 0; j < name.size(); ++j)
    h = (h + static_cast<int64_t>(static_cast<unsigned char>(name[j])) * static_cast<int64_t>(j + 1)) % 97;
  return static_cast<double>(h);
}

// Element k (row-major) of parameter `name`.
inline double fill_value(const std::string& name, int64_t k) {
  return 0.3 * std::sin(0.61 * static_cast<double>(k) + 0.37 * name_hash(name) + 0.2);
}

// Every parameter of `m` (float64) set to fill_value.
inline void fill(nn::Module& m) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : m.named_parameters()) {
    std::vector<double> v(static_cast<std::size_t>(p.numel()));
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = fill_value(name, static_cast<int64_t>(k));
    state.emplace(name, from_vector(v, p.shape(), DType::float64));
  }
  nn::load_state_dict(m, state);
}

// x[i] = sin(a i + b), row-major, float64, requiring grad.
inline Tensor seq(const Shape& shape, double a, double b) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(a * static_cast<double>(i) + b);
  return from_vector(v, shape, TensorOptions(DType::float64).requires_grad(true));
}

// The fixtures' loss: sum_k y[k] * (1 + 0.1 k).
inline Tensor weighted_sum(const Tensor& y) {
  std::vector<double> w(static_cast<std::size_t>(y.numel()));
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = 1 + 0.1 * static_cast<double>(k);
  return sum(y * from_vector(w, y.shape(), DType::float64));
}

// The fixtures' parameter-gradient checksum: sum_k g[k] * (1 + 0.01 k).
inline double checksum(const Tensor& g) {
  const std::vector<double> v = g.to_vector();
  double s = 0;
  for (std::size_t k = 0; k < v.size(); ++k) s += v[k] * (1 + 0.01 * static_cast<double>(k));
  return s;
}

// The fixtures' inputs and masks: tgt [3, 2, 4], memory and src [4, 2, 4] (sequence first).
inline Tensor tgt_input() { return seq({3, 2, 4}, 0.7, 0.3); }
inline Tensor memory_input() { return seq({4, 2, 4}, 0.5, 1.1); }
inline nn::AttentionMask tgt_mask() { return nn::AttentionMask::additive(nn::causal_mask(3, 3, DType::float64)); }
inline nn::AttentionMask memory_mask() {  // [3, 4], 0.2 sin(i + 0.5 j), a bias
  std::vector<double> v;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) v.push_back(0.2 * std::sin(1.0 * i + 0.5 * j));
  return nn::AttentionMask::additive(from_vector(v, {3, 4}, DType::float64));
}
inline nn::AttentionMask src_mask() {  // [4, 4], 0.3 cos(0.7 i - 0.4 j)
  std::vector<double> v;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) v.push_back(0.3 * std::cos(0.7 * i - 0.4 * j));
  return nn::AttentionMask::additive(from_vector(v, {4, 4}, DType::float64));
}
// The last target of sequence 1 and the last memory position of sequence 0 are padding.
inline nn::AttentionMask tgt_padding() { return nn::AttentionMask::masked(tensor({{0, 0, 0}, {0, 0, 1}})); }
inline nn::AttentionMask memory_padding() { return nn::AttentionMask::masked(tensor({{0, 0, 0, 1}, {0, 0, 0, 0}})); }

}  // namespace chainrule::testing::transformer
