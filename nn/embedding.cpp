#include "nn/embedding.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace chainrule::nn {

namespace {

const EmbeddingOptions& checked(const EmbeddingOptions& o) {
  if (o.num_embeddings() < 1)
    throw std::invalid_argument(fmt::format("Embedding: num_embeddings must be >= 1, got {}", o.num_embeddings()));
  if (o.embedding_dim() < 1)
    throw std::invalid_argument(fmt::format("Embedding: embedding_dim must be >= 1, got {}", o.embedding_dim()));
  if (const auto& p = o.padding_idx(); p && !(*p >= -o.num_embeddings() && *p < o.num_embeddings()))
    throw std::invalid_argument(fmt::format("Embedding: padding_idx must be in [-{0}, {0}) (num_embeddings), got {1}",
                                            o.num_embeddings(), *p));
  if (const auto& m = o.max_norm(); m && !(*m > 0))
    throw std::invalid_argument(fmt::format("Embedding: max_norm must be > 0, got {}", *m));
  if (!(o.norm_type() > 0))
    throw std::invalid_argument(fmt::format("Embedding: norm_type must be > 0 (or infinity), got {}", o.norm_type()));
  return o;
}

}  // namespace

void Embedding::renorm(const std::vector<int64_t>& ids) {
  std::vector<int64_t> rows = ids;
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  const double max_norm = *options_.max_norm(), p = options_.norm_type();
  const int64_t d = options_.embedding_dim();
  // The norms first (in double), and the weight written (its version bumped) only if a row is over.
  std::vector<std::pair<int64_t, double>> scales;
  const auto run = [&]<class T>() {
    const T* w = weight_.data<T>();
    for (int64_t r : rows) {
      double norm = 0;
      for (int64_t j = 0; j < d; ++j) {
        const double a = std::abs(static_cast<double>(w[r * d + j]));
        norm = std::isinf(p) ? std::max(norm, a) : norm + std::pow(a, p);
      }
      if (!std::isinf(p)) norm = std::pow(norm, 1 / p);
      if (norm > max_norm) scales.emplace_back(r, max_norm / (norm + 1e-7));
    }
    if (scales.empty()) return;
    T* w_out = weight_.mutable_data<T>();
    for (const auto& [r, scale] : scales)
      for (int64_t j = 0; j < d; ++j) w_out[r * d + j] = static_cast<T>(w_out[r * d + j] * scale);
  };
  if (weight_.dtype() == DType::float64) run.template operator()<double>();
  else run.template operator()<float>();
}

Embedding::Embedding(const EmbeddingOptions& options) : Embedding(options, default_generator()) {}

Embedding::Embedding(const EmbeddingOptions& options, Generator& gen) : Module("Embedding"), options_(checked(options)) {
  Generator own(options.seed().value_or(0));
  Generator& g = options.seed() ? own : gen;
  const int64_t n = options.num_embeddings(), d = options.embedding_dim();
  weight_ = register_parameter("weight", zeros({n, d}, options.dtype()));
  options.init().apply(weight_, g, compute_fans(weight_.shape()));
  if (const auto& p = options.padding_idx()) {
    padding_row_ = *p < 0 ? *p + n : *p;
    std::vector<double> keep(static_cast<std::size_t>(n), 1.0);
    keep[static_cast<std::size_t>(*padding_row_)] = 0.0;
    NoGradGuard no_grad;
    weight_ *= from_vector(keep, {n, 1}, weight_.dtype());
  }
}

Tensor Embedding::forward(const std::vector<int64_t>& ids) {
  if (!weight_.defined()) throw std::logic_error("Embedding::forward: this Embedding has no weight (it was moved from)");
  const int64_t n = weight_.size(0);
  for (std::size_t k = 0; k < ids.size(); ++k)
    if (ids[k] < 0 || ids[k] >= n)
      throw std::out_of_range(fmt::format("Embedding::forward: id {} (position {}) is not in [0, {}) (num_embeddings)",
                                          ids[k], k, n));
  if (options_.max_norm()) renorm(ids);
  const Tensor rows = index_select(weight_, 0, ids);
  if (!padding_row_ || std::find(ids.begin(), ids.end(), *padding_row_) == ids.end()) return rows;
  // The padding lookups take the rows' values but pass no gradient back (selected, not multiplied:
  // an infinite gradient there gives 0, not NaN).
  std::vector<double> pad(ids.size());
  for (std::size_t k = 0; k < ids.size(); ++k) pad[k] = ids[k] == *padding_row_ ? 1.0 : 0.0;
  return where(from_vector(pad, {static_cast<int64_t>(ids.size()), 1}, rows.dtype()), rows.detach(), rows);
}

Tensor Embedding::forward(const Tensor& ids) {
  if (!ids.defined()) throw std::invalid_argument("Embedding::forward: the ids tensor is undefined");
  if (!weight_.defined()) throw std::logic_error("Embedding::forward: this Embedding has no weight (it was moved from)");
  const int64_t n = weight_.size(0);
  const std::vector<double> values = ids.to_vector();
  std::vector<int64_t> whole(values.size());
  for (std::size_t k = 0; k < values.size(); ++k) {
    const double v = values[k];
    if (!(v >= 0 && v < static_cast<double>(n)) || v != std::floor(v))
      throw std::out_of_range(fmt::format(
          "Embedding::forward: id {} (element {} of ids {}) is not a whole number in [0, {}) (num_embeddings)", v, k,
          ids.shape().str(), n));
    whole[k] = static_cast<int64_t>(v);
  }
  std::vector<int64_t> shape = ids.shape().to_vector();
  shape.push_back(options_.embedding_dim());
  return reshape(forward(whole), shape);
}

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("num_embeddings={}, embedding_dim={}", options_.num_embeddings(), options_.embedding_dim());
  if (padding_row_) s += fmt::format(", padding_idx={}", *padding_row_);
  if (options_.max_norm()) s += fmt::format(", max_norm={}", *options_.max_norm());
  if (options_.norm_type() != 2.0) s += fmt::format(", norm_type={}", options_.norm_type());
  if (weight_.defined() && weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

}  // namespace chainrule::nn
