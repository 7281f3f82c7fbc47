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
// nn::Dropout2d, as torch.nn.Dropout2d, drops whole channels instead (Dropout1d likewise for signals): for x [N, C, H, W] one draw
// per (sample, channel), m [N, C, 1, 1] broadcast over the image, so a channel is all zeros or all
// scaled by 1 / (1 - p). Neighbouring pixels of a feature map are correlated, and dropping them one
// by one regularises little (Tompson et al. 2015).
//
// The mask comes from the layer's own Generator when a seed is given (reproducible runs), else from
// default_generator() (seeded by manual_seed()). A finite-difference check (gradcheck,
// gradcheck_model) of a model in training mode sees a new mask at every evaluation and fails, as
// PyTorch's does: check it after eval(), where Dropout is the identity.
//
//   auto drop = std::make_shared<nn::Dropout>(nn::DropoutOptions(0.2).seed(7));
//   Tensor h = drop->forward(x);  // training: about a fifth of h is 0, the rest x / 0.8
//   model->eval();                // Dropout passes x through from now on
//   nn::Dropout2d(0.1).forward(images);  // [N, C, H, W]: about a tenth of the channels zeroed
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

// The functional form (torch.nn.functional.dropout): x * m in training, m drawn from gen with the
// shape mask_shape (x's, or x's with 1 in the dims one draw covers, broadcast over x); x itself
// (the same tensor) when !training or p == 0. p in [0, 1], else std::invalid_argument naming
// `op` (the caller, e.g. "LSTM::forward") and p; so is a mask_shape of another rank than x's or
// with a dim that is neither 1 nor x's. The recurrent layers' dropout between layers is
// this call.
//   Tensor h = nn::dropout(x, 0.2, model->is_training(), gen);
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, const char* op = "dropout");
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, const Shape& mask_shape,
               const char* op = "dropout");

// The dropout layers' shared part: p, checked at construction (std::invalid_argument with the
// value), and the Generator the masks come from.
class DropoutNd : public Module {
 public:
  double p() const { return options_.p(); }
  std::string extra_repr() const override;  // "p=0.5"

 protected:
  DropoutNd(const char* name, const DropoutOptions& options);
  // x * m in training, m of mask_shape (x's, or x's with 1 in the dims a draw covers) broadcast
  // over x; x itself in evaluation or at p = 0.
  Tensor drop(const Tensor& x, const Shape& mask_shape);

 private:
  DropoutOptions options_;
  std::optional<Generator> own_;  // with a seed
};

class Dropout : public DropoutNd {
 public:
  explicit Dropout(const DropoutOptions& options = DropoutOptions()) : DropoutNd("Dropout", options) {}
  explicit Dropout(double p) : Dropout(DropoutOptions(p)) {}
  Tensor forward(const Tensor& x) override;
};

// nn::Dropout1d, as torch.nn.Dropout1d: whole channels of signals, x [N, C, L] with the mask
// [N, C, 1] (or unbatched [C, L] with [C, 1]).
class Dropout1d : public DropoutNd {
 public:
  explicit Dropout1d(const DropoutOptions& options = DropoutOptions()) : DropoutNd("Dropout1d", options) {}
  explicit Dropout1d(double p) : Dropout1d(DropoutOptions(p)) {}
  // std::invalid_argument for a rank other than 2 or 3, as torch's.
  Tensor forward(const Tensor& x) override;
};

class Dropout2d : public DropoutNd {
 public:
  explicit Dropout2d(const DropoutOptions& options = DropoutOptions()) : DropoutNd("Dropout2d", options) {}
  explicit Dropout2d(double p) : Dropout2d(DropoutOptions(p)) {}
  // x [N, C, H, W] -> the same shape, the mask [N, C, 1, 1]. A 3-D x is read as [N, C, L] (mask
  // [N, C, 1]), as torch 2's Dropout2d still reads it (its warning says a later release will read
  // [C, H, W]; pass [1, C, H, W] for one image). std::invalid_argument for other ranks, where torch
  // warns that they are deprecated and masks dims 0 and 1 all the same.
  Tensor forward(const Tensor& x) override;
};

}  // namespace chainrule::nn
