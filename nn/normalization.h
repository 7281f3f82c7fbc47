#pragma once
// Normalisation layers, as torch.nn's: LayerNorm, GroupNorm, BatchNorm1d and BatchNorm2d. Compositions of autograd
// ops (mean, subtraction, multiplication, sqrt; no derivative is defined here), so create_graph and
// gradcheck work through them as through any other graph.
//
//   LayerNorm over the last dims D (normalized_shape), per sample:
//     y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias      E, Var over D; Var biased (divides by |D|)
//     weight (ones) and bias (zeros) have shape D; elementwise_affine(false) leaves them out.
//
//   GroupNorm over groups of channels, per sample: x [N, C, *], C split into G groups of C / G
//     channels in order; y = (x - E[x]) / sqrt(Var[x] + eps) * weight[c] + bias[c], E and Var over
//     the group's channels and positions, Var biased; weight (ones) and bias (zeros) of shape [C].
//     G = 1 is LayerNorm over [C, *] with per-channel affine; G = C is instance normalisation.
//
//   BatchNorm1d over the batch, per channel c, input [N, C] or [N, C, L]:
//     training:  y = (x - mean_B) / sqrt(var_B + eps) * weight[c] + bias[c]
//                mean_B, var_B over N (and L), var_B biased; then, without recording,
//                num_batches_tracked += 1
//                running_mean = (1 - f) * running_mean + f * mean_B
//                running_var  = (1 - f) * running_var  + f * var_B * n / (n - 1)
//                (n = N * L values per channel: the running variance is the unbiased one, as torch)
//                f = momentum, or with momentum(std::nullopt) (torch's momentum=None) 1 /
//                num_batches_tracked: the cumulative average of every batch's statistics
//     evaluation (eval()): y = (x - running_mean) / sqrt(running_var + eps) * weight[c] + bias[c]
//     running_mean (zeros), running_var (ones) and num_batches_tracked (0, shape [] as torch's)
//     are persistent buffers: nn::save writes them, with torch's names, so state dicts go both
//     ways. The count has the layer's dtype (chainrule has no integer tensors; float32 counts
//     exactly up to 2^24 batches), is saved as such, and loads from torch's int64 (I64) entry; a
//     file without it (written before chainrule kept it) loads and leaves it as it is.
//     Every training-mode forward updates them, a finite-difference check's evaluations included:
//     snapshot with nn::state_dict and restore with nn::load_state_dict around such a check.
//   BatchNorm2d: the same per channel of images [N, C, H, W], over N, H and W.
//     Unlike torch, track_running_stats cannot be turned off.
//
//   auto norm = std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({8}));
//   auto bn = std::make_shared<nn::BatchNorm1d>(nn::BatchNorm1dOptions(16).momentum(0.1));
//   bn->eval();  // running statistics from now on
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace chainrule::nn {

// The functional form: normalises x over its last normalized_shape.size() dims, which must equal
// normalized_shape (std::invalid_argument naming both shapes); weight and bias may be undefined
// (no affine step), else of shape normalized_shape.
Tensor layer_norm(const Tensor& x, const std::vector<int64_t>& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

struct LayerNormOptions {
  // The trailing dims normalised over: each >= 1, at least one (checked by LayerNorm).
  explicit LayerNormOptions(std::vector<int64_t> normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormOptions& eps(double e) { eps_ = e; return *this; }  // > 0 (default 1e-5)
  LayerNormOptions& elementwise_affine(bool on) { elementwise_affine_ = on; return *this; }  // default true
  LayerNormOptions& bias(bool on) { bias_ = on; return *this; }  // the affine step's bias (default true)
  LayerNormOptions& dtype(DType d) { dtype_ = d; return *this; }  // of weight and bias (default float32)

  const std::vector<int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }
  bool bias() const { return bias_; }
  DType dtype() const { return dtype_; }

 private:
  std::vector<int64_t> normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
  bool bias_ = true;
  DType dtype_ = DType::float32;
};

class LayerNorm : public Module {
 public:
  // Registers "weight" (ones) and "bias" (zeros) of normalized_shape, unless turned off.
  explicit LayerNorm(const LayerNormOptions& options);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }  // undefined without elementwise_affine
  const Tensor& bias() const { return bias_; }      // undefined without it or without bias
  const LayerNormOptions& options() const { return options_; }
  std::string extra_repr() const override;  // "[8], eps=1e-05, elementwise_affine=true"

 private:
  LayerNormOptions options_;
  Tensor weight_, bias_;
};

// The functional form: x [N, C, ...] (at least 2 dims), C divisible by num_groups >= 1; weight
// and bias [C] or undefined. std::invalid_argument naming group_norm and the shapes otherwise.
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
  GroupNormOptions& eps(double e) { eps_ = e; return *this; }      // > 0 (default 1e-5)
  GroupNormOptions& affine(bool on) { affine_ = on; return *this; }  // weight and bias (default true)
  GroupNormOptions& dtype(DType d) { dtype_ = d; return *this; }    // of weight and bias (default float32)

  int64_t num_groups() const { return num_groups_; }
  int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }
  DType dtype() const { return dtype_; }

 private:
  int64_t num_groups_, num_channels_;
  double eps_ = 1e-5;
  bool affine_ = true;
  DType dtype_ = DType::float32;
};

class GroupNorm : public Module {
 public:
  // Registers "weight" (ones) and "bias" (zeros) of [num_channels] unless affine(false);
  // std::invalid_argument unless num_groups >= 1 divides num_channels >= 1.
  explicit GroupNorm(const GroupNormOptions& options);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }  // undefined without affine
  const Tensor& bias() const { return bias_; }
  const GroupNormOptions& options() const { return options_; }
  std::string extra_repr() const override;  // "2, 8, eps=1e-05, affine=true"

 private:
  GroupNormOptions options_;
  Tensor weight_, bias_;
};

// BatchNorm1d's and BatchNorm2d's options.
struct BatchNormOptions {
  explicit BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // >= 1
  BatchNormOptions& eps(double e) { eps_ = e; return *this; }            // > 0 (default 1e-5)
  // In [0, 1] (default 0.1); std::nullopt for the cumulative average (torch's momentum=None).
  BatchNormOptions& momentum(std::optional<double> m) { momentum_ = m; return *this; }
  BatchNormOptions& affine(bool on) { affine_ = on; return *this; }      // weight and bias (default true)
  BatchNormOptions& dtype(DType d) { dtype_ = d; return *this; }          // parameters and buffers (float32)

  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  DType dtype() const { return dtype_; }

 private:
  int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  DType dtype_ = DType::float32;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

// The batch normalisation both layers run: per channel (dim 1), over every other dim.
class BatchNorm : public Module {
 public:
  // In training, more than one value per channel (N * L, N * H * W > 1), as the variance needs
  // two; an input of another rank or channel count is std::invalid_argument naming the shape.
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }  // shape [], the layer's dtype
  const BatchNormOptions& options() const { return options_; }
  std::string extra_repr() const override;  // "16, eps=1e-05, momentum=0.1, affine=true" (momentum=None)

 protected:
  // Registers "weight" (ones) and "bias" (zeros) of [num_features] unless affine is off, and the
  // buffers "running_mean" (zeros), "running_var" (ones) and "num_batches_tracked" (0; optional in
  // files, see Module::optional_state). `ranks`: the input ranks accepted,
  // `shapes` how the message names them ("[N, C] or [N, C, L]").
  BatchNorm(const char* name, const BatchNormOptions& options, std::vector<int> ranks, const char* shapes);

 private:
  BatchNormOptions options_;
  std::vector<int> ranks_;
  const char* shapes_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

// Over [N, C] or [N, C, L] (torch.nn.BatchNorm1d).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNorm("BatchNorm1d", options, {2, 3}, "[N, {0}] or [N, {0}, L]") {}
};

// Over images [N, C, H, W], per channel over N, H and W (torch.nn.BatchNorm2d).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNorm("BatchNorm2d", options, {4}, "[N, {0}, H, W]") {}
};

}  // namespace chainrule::nn
