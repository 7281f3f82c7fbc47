#pragma once
// nn::Dropout, as torch.nn.Dropout: in training, each element is zeroed with probability p and the
// others are scaled by 1 / (1 - p), so that the expected output is the input; in evaluation
// (eval()) the input passes through unchanged (the same tensor).
//
//   training:  y = x * m,  m_i = 1 / (1 - p) with probability 1 - p, else 0   (a new m per forward)
//   dy/dx = m: the mask is a constant of the recorded graph, so backward sends each kept element's
//   gradient through scaled and gives the dropped ones 0.
//   p = 0 and evaluation are the identity; p = 1 gives zeros (and zero gradients).
//
// The mask comes from the layer's own Generator when a seed is given (reproducible runs), else from
// default_generator() (seeded by manual_seed()). A finite-difference check (gradcheck,
// gradcheck_model) of a model in training mode sees a new mask at every evaluation and fails, as
// PyTorch's does: check it after eval(), where Dropout is the identity.
//
//   auto drop = std::make_shared<nn::Dropout>(nn::DropoutOptions(0.2).seed(7));
//   Tensor h = drop->forward(x);  // training: about a fifth of h is 0, the rest x / 0.8
//   model->eval();                // Dropout passes x through from now on
#include <cstdint>
#include <optional>
#include <string>

#include "nn/init.h"
#include "nn/module.h"

namespace chainrule::nn {

struct DropoutOptions {
  // p in [0, 1] (checked by Dropout, std::invalid_argument with the value); default 0.5, torch's.
  explicit DropoutOptions(double p = 0.5) : p_(p) {}
  DropoutOptions& p(double v) { p_ = v; return *this; }
  // A seed for this layer's own Generator (else default_generator()).
  DropoutOptions& seed(uint64_t s) { seed_ = s; return *this; }

  double p() const { return p_; }
  const std::optional<uint64_t>& seed() const { return seed_; }

 private:
  double p_;
  std::optional<uint64_t> seed_;
};

class Dropout : public Module {
 public:
  explicit Dropout(const DropoutOptions& options = DropoutOptions());
  explicit Dropout(double p) : Dropout(DropoutOptions(p)) {}
  Tensor forward(const Tensor& x) override;
  double p() const { return options_.p(); }
  std::string extra_repr() const override;  // "p=0.5"

 private:
  DropoutOptions options_;
  std::optional<Generator> own_;  // with a seed
};

}  // namespace chainrule::nn
