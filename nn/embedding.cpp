#include "nn/embedding.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

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
  return o;
}

}  // namespace

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
  if (weight_.defined() && weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

}  // namespace chainrule::nn
