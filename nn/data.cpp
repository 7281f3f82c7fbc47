#include "nn/data.h"
#include "nn/reserve.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <stdexcept>

namespace chainrule::nn {
namespace {

void check_index(const char* function, std::size_t index, std::size_t position, std::size_t n) {
  if (index >= n)
    throw std::out_of_range(
        fmt::format("{}: index {} (position {}) is out of range for {} rows", function, index, position, n));
}

int64_t to_label(double value, std::size_t row) {
  // 2^62 keeps the cast exact and far from int64_t's limits; no class count comes near it.
  if (!(value >= 0 && value < 0x1p62) || value != std::floor(value))
    throw std::invalid_argument(
        fmt::format("to_labels: row {} holds {}, expected a whole number >= 0 (a class index)", row, value));
  return static_cast<int64_t>(value);
}

}  // namespace

Tensor rows_to_tensor(const std::vector<std::vector<double>>& rows, DType dtype) {
  if (rows.empty()) throw std::invalid_argument("rows_to_tensor: no rows (expected N >= 1 rows of D >= 1 values)");
  const std::size_t width = rows[0].size();
  if (width == 0) throw std::invalid_argument("rows_to_tensor: row 0 is empty (expected D >= 1 values per row)");
  std::vector<double> flat;
  flat.reserve(rows.size() * width);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != width)
      throw std::invalid_argument(
          fmt::format("rows_to_tensor: row {} has {} values, row 0 has {}", r, rows[r].size(), width));
    flat.insert(flat.end(), rows[r].begin(), rows[r].end());
  }
  return from_vector(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)}, dtype);
}

Tensor batch_rows(const Tensor& data, const std::vector<std::size_t>& indices) {
  if (!data.defined()) throw std::invalid_argument("batch_rows: the data tensor is undefined");
  if (data.dim() == 0) throw std::invalid_argument("batch_rows: the data tensor is 0-d (expected [N, ...])");
  if (data.requires_grad())
    throw std::invalid_argument(fmt::format(
        "batch_rows: the data tensor {} requires grad, and the batch would be cut from its graph "
        "(select rows of a parameter with slice/concat, or pass data.detach())",
        data.shape().str()));
  if (indices.empty()) throw std::invalid_argument("batch_rows: no indices (a batch needs at least one row)");
  const std::size_t n = static_cast<std::size_t>(data.size(0));
  for (std::size_t i = 0; i < indices.size(); ++i) check_index("batch_rows", indices[i], i, n);

  Shape shape = data.shape();
  shape.set(0, static_cast<int64_t>(indices.size()));
  const std::size_t row = static_cast<std::size_t>(data.numel()) / n;  // n >= 1: an index passed the check
  Tensor out = zeros(shape, data.dtype());
  auto copy = [&]<class T>() {
    const T* from = data.data<T>();
    T* to = out.mutable_data<T>();
    for (std::size_t i = 0; i < indices.size(); ++i) std::memcpy(to + i * row, from + indices[i] * row, row * sizeof(T));
  };
  if (data.dtype() == DType::float32) copy.operator()<float>();
  else copy.operator()<double>();
  return out;
}

std::vector<int64_t> to_labels(const std::vector<double>& values) {
  std::vector<int64_t> labels;
  labels.reserve(values.size());
  for (std::size_t r = 0; r < values.size(); ++r) labels.push_back(to_label(values[r], r));
  return labels;
}

std::vector<int64_t> to_labels(const std::vector<std::vector<double>>& targets) {
  std::vector<int64_t> labels;
  labels.reserve(targets.size());
  for (std::size_t r = 0; r < targets.size(); ++r) {
    if (targets[r].size() != 1)
      throw std::invalid_argument(
          fmt::format("to_labels: row {} has {} values, expected 1 (one class index per row)", r, targets[r].size()));
    labels.push_back(to_label(targets[r][0], r));
  }
  return labels;
}

std::vector<int64_t> batch_labels(const std::vector<int64_t>& labels, const std::vector<std::size_t>& indices) {
  std::vector<int64_t> out;
  out.reserve(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    check_index("batch_labels", indices[i], i, labels.size());
    out.push_back(labels[indices[i]]);
  }
  return out;
}

std::vector<int64_t> argmax_labels(const Tensor& scores) {
  if (!scores.defined()) throw std::invalid_argument("argmax_labels: the scores tensor is undefined");
  if (scores.dim() < 1 || scores.dim() > 2)
    throw std::invalid_argument(
        fmt::format("argmax_labels: expected scores [N, C] or [C], got shape {}", scores.shape().str()));
  const int64_t classes = scores.size(scores.dim() - 1);
  if (classes == 0) throw std::invalid_argument(fmt::format("argmax_labels: no classes in shape {}", scores.shape().str()));
  const std::vector<double> v = scores.to_vector();
  const std::size_t c = static_cast<std::size_t>(classes);
  std::vector<int64_t> labels;
  for (std::size_t start = 0; start < v.size(); start += c) {
    std::size_t best = 0;
    // NaN counts as the largest score, at its first position (as PyTorch's argmax).
    for (std::size_t j = 1; j < c && v[start + best] == v[start + best]; ++j)
      if (v[start + j] > v[start + best] || v[start + j] != v[start + j]) best = j;
    labels.push_back(static_cast<int64_t>(best));
  }
  return labels;
}

double accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& labels) {
  if (predicted.size() != labels.size() || labels.empty())
    throw std::invalid_argument(fmt::format("accuracy: {} predictions for {} labels (expected the same number, >= 1)",
                                            predicted.size(), labels.size()));
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

Dataset make_spiral(const SpiralOptions& o) {
  if (o.points_per_class == 0) throw std::invalid_argument("make_spiral: points_per_class must be >= 1, got 0");
  if (!(o.turns > 0 && std::isfinite(o.turns)))
    throw std::invalid_argument(fmt::format("make_spiral: turns must be finite and > 0, got {}", o.turns));
  if (!(o.inner_radius >= 0 && o.inner_radius < 1))
    throw std::invalid_argument(fmt::format("make_spiral: inner_radius must be in [0, 1), got {}", o.inner_radius));
  if (!(o.noise >= 0 && std::isfinite(o.noise)))
    throw std::invalid_argument(fmt::format("make_spiral: noise must be finite and >= 0, got {}", o.noise));
  if (o.points_per_class > SIZE_MAX / 2)
    throw std::length_error(fmt::format("make_spiral: 2 x {} points are more than a vector can hold", o.points_per_class));
  Generator gen(o.seed);
  Dataset d{{}, {}, {"x1", "x2"}, {"class"}};
  detail::reserve_for(d.features, 2 * o.points_per_class, "make_spiral");
  detail::reserve_for(d.targets, 2 * o.points_per_class, "make_spiral");
  for (std::size_t i = 0; i < o.points_per_class; ++i) {
    for (int c = 0; c < 2; ++c) {
      // The draws happen in a fixed order (r, e1, e2) so that a seed pins every point.
      const double r = gen.uniform(o.inner_radius, 1);
      const double e1 = gen.normal(0, o.noise), e2 = gen.normal(0, o.noise);
      const double angle = 2 * std::numbers::pi * o.turns * r + c * std::numbers::pi;
      d.features.push_back({r * std::cos(angle) + e1, r * std::sin(angle) + e2});
      d.targets.push_back({static_cast<double>(c)});
    }
  }
  return d;
}

Dataset make_moons(const MoonsOptions& o) {
  if (o.n_samples < 2) throw std::invalid_argument(fmt::format("make_moons: n_samples must be >= 2, got {}", o.n_samples));
  if (!(o.noise >= 0 && std::isfinite(o.noise)))
    throw std::invalid_argument(fmt::format("make_moons: noise must be finite and >= 0, got {}", o.noise));
  const std::size_t n_out = o.n_samples / 2, n_in = o.n_samples - n_out;
  const auto angle = [](std::size_t k, std::size_t n) {
    return n == 1 ? 0.0 : std::numbers::pi * static_cast<double>(k) / static_cast<double>(n - 1);
  };
  Generator gen(o.seed);
  Dataset d{{}, {}, {"x1", "x2"}, {"class"}};
  detail::reserve_for(d.features, o.n_samples, "make_moons");
  detail::reserve_for(d.targets, o.n_samples, "make_moons");
  const auto add = [&](double x1, double x2, int c) {
    const double e1 = gen.normal(0, o.noise), e2 = gen.normal(0, o.noise);
    d.features.push_back({x1 + e1, x2 + e2});
    d.targets.push_back({static_cast<double>(c)});
  };
  for (std::size_t k = 0; k < n_in; ++k) {
    if (k < n_out) add(std::cos(angle(k, n_out)), std::sin(angle(k, n_out)), 0);
    add(1 - std::cos(angle(k, n_in)), 1 - std::sin(angle(k, n_in)) - 0.5, 1);
  }
  return d;
}

Dataset make_noisy_sine(const NoisySineOptions& o) {
  if (o.n == 0) throw std::invalid_argument("make_noisy_sine: n must be >= 1, got 0");
  if (!(o.low < o.high && std::isfinite(o.low) && std::isfinite(o.high)))
    throw std::invalid_argument(
        fmt::format("make_noisy_sine: expected finite low < high, got low {} and high {}", o.low, o.high));
  if (!(o.noise >= 0 && std::isfinite(o.noise)))
    throw std::invalid_argument(fmt::format("make_noisy_sine: noise must be finite and >= 0, got {}", o.noise));
  Generator gen(o.seed);
  Dataset d{{}, {}, {"x"}, {"y"}};
  detail::reserve_for(d.features, o.n, "make_noisy_sine");
  detail::reserve_for(d.targets, o.n, "make_noisy_sine");
  for (std::size_t i = 0; i < o.n; ++i) {
    const double x = gen.uniform(o.low, o.high);
    d.features.push_back({x});
    d.targets.push_back({std::sin(x) + gen.normal(0, o.noise)});
  }
  return d;
}

}  // namespace chainrule::nn
