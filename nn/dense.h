#pragma once
// nn::Dense: a fully connected layer, as torch.nn.Linear.
//
//   y = x @ W^T + b
//   x: [..., in_features]   W: [out_features, in_features]   b: [out_features]   y: [..., out_features]
//
// Row j of W holds the weights into output node j: in the lecture's 2-3-1 network, the hidden
// layer's W1[j][i] is the weight IN(i+1) -> H(j+1), so the slides' table "IN1 -> HL: -0.2 0.4 -1.0"
// is W1's first column.
//
//   auto hidden = std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)
//                                                 .init(nn::Init::uniform(-1, 1))
//                                                 .bias_init(nn::Init::uniform(-1, 1))
//                                                 .dtype(DType::float64));
//   nn::set_values(hidden->weight(), {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});
//   Tensor h = hidden->forward(tensor({{-0.97, -0.80}}, DType::float64));  // [1, 3]
#include <cstdint>
#include <optional>
#include <string>

#include "nn/init.h"
#include "nn/module.h"

namespace chainrule::nn {

struct DenseOptions : WeightBiasOptions<DenseOptions> {
  // in_features, out_features >= 1 (checked by Dense, std::invalid_argument with the value).
  DenseOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  int64_t in_features_, out_features_;
};

class Dense : public Module {
 public:
  // Registers "weight" [out, in] and, with bias, "bias" [out]; initialises the weight first, then
  // the bias, from the options' seed or from default_generator().
  explicit Dense(const DenseOptions& options);
  // The same, drawing from `gen` (unless the options carry a seed).
  Dense(const DenseOptions& options, Generator& gen);

  // y = x @ W^T + b. x must have at least 1 dim, its last of size in_features and the layer's
  // dtype (std::invalid_argument naming both shapes or dtypes otherwise).
  Tensor forward(const Tensor& x) override;

  // The parameters (handles: set_values(weight(), ...) changes the layer's weights).
  const Tensor& weight() const { return weight_; }
  // Makes `w` this layer's weight ([out_features, in_features], the weight's dtype; see
  // Module::replace_parameter): weight tying, e.g. a language model's output layer sharing its
  // embedding table, decoder->set_weight(embedding->weight()).
  void set_weight(const Tensor& w) { weight_ = replace_parameter("weight", w); }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  // As the layer was built: after Module::to, the parameters' dtype is weight().dtype().
  const DenseOptions& options() const { return options_; }

  // "in_features=2, out_features=3, bias=true" (and ", dtype=float64" when not float32).
  std::string extra_repr() const override;

 private:
  DenseOptions options_;
  Tensor weight_, bias_;
};

}  // namespace chainrule::nn
