#pragma once
// nn::Embedding: a lookup table of learned vectors, as torch.nn.Embedding.
//
//   y[..., :] = W[id, :]      ids: whole numbers in [0, num_embeddings), any shape
//   W: [num_embeddings, embedding_dim]      y: ids' shape + [embedding_dim]
//
// The lookup is index_select(W, 0, ids) (autograd/tensor.h), so a backward adds each id's gradient
// into its row (an id used twice gets both), and create_graph works.
//
// padding_idx (torch's): that row starts at zero and takes no gradient, so it stays what it is
// (zero unless set) through training; a lookup of it returns the row. This is deliberately not
// the derivative of the forward (the output does depend on the row), as in torch: a gradcheck of
// the padding row reports the difference.
//
// max_norm (torch's): before each lookup, every row the ids name whose norm_type-norm exceeds
// max_norm is scaled in place, without recording, to max_norm / (norm + 1e-7) of itself (torch's
// embedding_renorm_), so the rows looked up have norm at most max_norm. It changes the weight in
// place: a graph recorded earlier that saved the weight then refuses its backward (the version
// check), as torch's does.
//
//   auto embed = std::make_shared<nn::Embedding>(nn::EmbeddingOptions(100, 8).seed(1));
//   Tensor v = embed->forward({3, 14, 3});                             // [3, 8]
//   Tensor batch = embed->forward(tensor({{1.0, 2.0}, {3.0, 4.0}}));  // ids [2, 2] -> [2, 2, 8]
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/init.h"
#include "nn/module.h"

namespace chainrule::nn {

struct EmbeddingOptions {
  // num_embeddings, embedding_dim >= 1 (checked by Embedding, std::invalid_argument with the value).
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  // The weight's initialiser (default N(0, 1), torch.nn.Embedding's).
  EmbeddingOptions& init(Init init) { init_ = std::move(init); return *this; }
  // The weight's dtype (default float32).
  EmbeddingOptions& dtype(DType d) { dtype_ = d; return *this; }
  // A seed for this layer's own Generator (else the Generator given, or default_generator()).
  EmbeddingOptions& seed(uint64_t s) { seed_ = s; return *this; }
  // The padding row (see above): in [-num_embeddings, num_embeddings), a negative one counted from
  // the end as torch does (checked by Embedding, std::invalid_argument with the value).
  EmbeddingOptions& padding_idx(int64_t i) { padding_idx_ = i; return *this; }
  // Renormalise looked-up rows to at most this norm (see above): > 0 (checked by Embedding).
  EmbeddingOptions& max_norm(double m) { max_norm_ = m; return *this; }
  // The p of the p-norm max_norm uses (default 2, torch's): > 0, or infinity for the largest |x|.
  EmbeddingOptions& norm_type(double p) { norm_type_ = p; return *this; }

  int64_t num_embeddings() const { return num_embeddings_; }
  int64_t embedding_dim() const { return embedding_dim_; }
  const Init& init() const { return init_; }
  DType dtype() const { return dtype_; }
  const std::optional<uint64_t>& seed() const { return seed_; }
  const std::optional<int64_t>& padding_idx() const { return padding_idx_; }
  const std::optional<double>& max_norm() const { return max_norm_; }
  double norm_type() const { return norm_type_; }

 private:
  int64_t num_embeddings_, embedding_dim_;
  Init init_ = Init::normal(0.0, 1.0);
  DType dtype_ = DType::float32;
  std::optional<uint64_t> seed_;
  std::optional<int64_t> padding_idx_;
  std::optional<double> max_norm_;
  double norm_type_ = 2.0;
};

class Embedding : public Module {
 public:
  // Registers "weight" [num_embeddings, embedding_dim].
  explicit Embedding(const EmbeddingOptions& options);
  Embedding(const EmbeddingOptions& options, Generator& gen);
  // ids as a tensor of whole numbers (any dtype; it takes no gradient): ids' shape + [dim]. An id
  // that is not a whole number in [0, num_embeddings) is std::out_of_range naming it and its position.
  Tensor forward(const Tensor& ids) override;
  // ids as numbers: [ids.size(), dim].
  Tensor forward(const std::vector<int64_t>& ids);
  const Tensor& weight() const { return weight_; }
  // Makes `w` this table ([num_embeddings, embedding_dim], the weight's dtype; see
  // Module::replace_parameter and Dense::set_weight). The padding row is not zeroed again.
  void set_weight(const Tensor& w) { weight_ = replace_parameter("weight", w); }
  const EmbeddingOptions& options() const { return options_; }
  // The padding row, counted from 0 (a negative padding_idx resolved), if any.
  std::optional<int64_t> padding_row() const { return padding_row_; }
  // "num_embeddings=100, embedding_dim=8" (and ", padding_idx=0", ", max_norm=1", ", norm_type=1",
  // ", dtype=float64" when set).
  std::string extra_repr() const override;

 private:
  void renorm(const std::vector<int64_t>& ids);  // max_norm's in-place step
  EmbeddingOptions options_;
  std::optional<int64_t> padding_row_;
  Tensor weight_;
};

}  // namespace chainrule::nn
