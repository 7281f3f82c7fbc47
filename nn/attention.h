#pragma once
// Attention, as torch.nn's: the functional scaled_dot_product_attention (torch 2.x semantics) and
// the MultiheadAttention layer. Compositions of autograd ops (matmul, softmax, where, reshape,
// permute, linear; no derivative is defined here), so gradcheck and create_graph work through them.
//
//   scores  = q k^T * scale + bias                 q [..., L, E], k [..., S, E], scores [..., L, S]
//   weights = softmax(scores) over S, each row     (a row with no key to attend to: all 0, see below)
//   weights = weights * dropout mask               (only when dropout_p > 0)
//   output  = weights v                            v [..., S, Ev], output [..., L, Ev]
//   scale defaults to 1 / sqrt(E); the batch dims "..." of q, k and v broadcast (as matmul's).
//
// Masks. chainrule has no bool dtype, so a mask says what its numbers mean when it is made; a
// plain Tensor is never taken as a mask (in torch a float 0/1 tensor passed where a bool one was
// meant is silently added to the scores, a classic bug):
//   AttentionMask::allowed(t):  t != 0 where the query may attend to the key (torch's bool mask in
//                               scaled_dot_product_attention: True = takes part)
//   AttentionMask::masked(t):   t != 0 where it may not (torch's bool key_padding_mask and
//                               attn_mask in MultiheadAttention: True = masked out)
//   AttentionMask::additive(t): t is added to the scores (torch's float masks: 0 keeps, -inf
//                               removes, other values bias); it may require grad (a learned bias).
// "!= 0" is where()'s reading of a condition (autograd/tensor.h), so any 0/1 tensor of either dtype
// serves for the first two; they are constants (no gradient flows into them). Internally each
// becomes an additive 0 / -inf term.
//
// Fully masked rows. A query row whose every key is removed (all scores -inf) gets weights 0 and
// output 0, and gradient 0, not NaN: torch 2.5+'s scaled_dot_product_attention (its math backend's
// _safe_softmax) gives the same 0; older torch, and torch's MultiheadAttention with need_weights,
// give NaN. Only rows that are exactly all -inf are zeroed: a large finite penalty (-1e9) on every
// key of a row is a shift, which softmax ignores, so that row attends as if unpenalised (as torch's).
//
// Dropout. The weights are multiplied by m, m_i = 1 / (1 - p) with probability 1 - p, else 0, drawn
// from the Generator given (default_generator() otherwise), a new m per call: as torch's functional
// form, scaled_dot_product_attention drops whenever dropout_p > 0 (it has no train/eval mode; pass
// 0 at evaluation). MultiheadAttention drops only in training (is_training()).
//
//   Tensor out = nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().is_causal(true));
//   Tensor pad = nn::scaled_dot_product_attention(
//       q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(keep)));  // keep [N, 1, 1, S]
//
//   auto mha = std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(16, 4).batch_first(true));
//   nn::MultiheadAttentionOutput r = mha->forward(x, x, x, nn::AttentionMask::masked(padding));  // x [N, L, 16]
//   r.output;   // [N, L, 16]     r.weights: [N, L, L], averaged over the 4 heads
#include <cstdint>
#include <optional>
#include <string>

#include "nn/dense.h"
#include "nn/module.h"

namespace chainrule::nn {

class AttentionMask {
 public:
  enum class Kind { none, allowed, masked, additive };
  AttentionMask() = default;  // no mask
  // Nonzero = the query may attend to the key (torch's bool mask of scaled_dot_product_attention).
  static AttentionMask allowed(Tensor t) { return AttentionMask(Kind::allowed, std::move(t)); }
  // Nonzero = it may not (torch's bool key_padding_mask and attn_mask of MultiheadAttention).
  static AttentionMask masked(Tensor t) { return AttentionMask(Kind::masked, std::move(t)); }
  // Added to the scores; must have the query's dtype. Differentiable.
  static AttentionMask additive(Tensor t) { return AttentionMask(Kind::additive, std::move(t)); }

  bool defined() const { return kind_ != Kind::none; }
  Kind kind() const { return kind_; }
  const Tensor& tensor() const { return tensor_; }
  // The mask as a term added to the scores, of the mask's shape and `dtype`: 0 where attending is
  // allowed and -inf where not (allowed, masked), or the tensor itself (additive). `op` names the
  // caller in errors: an undefined tensor, or an additive one of another dtype (std::invalid_argument).
  Tensor bias(DType dtype, const std::string& op) const;
  // "allowed [2, 5]", "masked [5]", "additive [5, 5]", "none".
  std::string str() const;

 private:
  AttentionMask(Kind kind, Tensor t) : kind_(kind), tensor_(std::move(t)) {}
  Kind kind_ = Kind::none;
  Tensor tensor_;
};

// torch.nn.functional.scaled_dot_product_attention's keyword arguments.
struct SDPAOptions {
  // Broadcastable to the scores' shape [..., L, S] (the batch dims of q and k broadcast).
  SDPAOptions& attn_mask(AttentionMask m) { attn_mask_ = std::move(m); return *this; }
  // The causal mask: query i attends to keys j <= i (torch's tril of ones(L, S), top-left
  // aligned). Not together with attn_mask (std::invalid_argument, as torch).
  SDPAOptions& is_causal(bool on) { is_causal_ = on; return *this; }
  // Multiplies q k^T (default 1 / sqrt(E)); finite.
  SDPAOptions& scale(std::optional<double> s) { scale_ = s; return *this; }
  // In [0, 1] (default 0). Applied at every call where > 0, as torch's functional form.
  SDPAOptions& dropout_p(double p) { dropout_p_ = p; return *this; }
  // Where dropout masks come from (default default_generator()). The options keep a pointer: the
  // Generator must outlive the calls that use them.
  SDPAOptions& generator(Generator& gen) { generator_ = &gen; return *this; }

  const AttentionMask& attn_mask() const { return attn_mask_; }
  bool is_causal() const { return is_causal_; }
  const std::optional<double>& scale() const { return scale_; }
  double dropout_p() const { return dropout_p_; }
  Generator& generator() const;

 private:
  AttentionMask attn_mask_;
  bool is_causal_ = false;
  std::optional<double> scale_;
  double dropout_p_ = 0.0;
  Generator* generator_ = nullptr;
};
using ScaledDotProductAttentionOptions = SDPAOptions;

// softmax(q k^T * scale + mask) v, as above. q [..., L, E], k [..., S, E], v [..., S, Ev], each at
// least 2-D, one dtype, S >= 1, batch dims broadcastable -> [..., L, Ev]. std::invalid_argument
// naming scaled_dot_product_attention and the shapes otherwise.
//   Tensor q = ..., k = ..., v = ...;  // [2, 4, 8], [2, 6, 8], [2, 6, 3]
//   Tensor y = nn::scaled_dot_product_attention(q, k, v);  // [2, 4, 3]
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const SDPAOptions& options = SDPAOptions());

// The [L, S] additive causal term: 0 where j <= i, -inf above the diagonal. l, s >= 0
// (std::invalid_argument naming causal_mask and both otherwise).
//   nn::causal_mask(2, 3);  // [[0, -inf, -inf], [0, 0, -inf]]
Tensor causal_mask(int64_t l, int64_t s, DType dtype = DType::float32);

struct MultiheadAttentionOptions {
  // embed_dim >= 1, num_heads >= 1 dividing it (checked by the layer, std::invalid_argument with
  // both numbers).
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  // Dropout on the attention weights in training, in [0, 1] (default 0, torch's).
  MultiheadAttentionOptions& dropout(double p) { dropout_ = p; return *this; }
  // in_proj_bias and out_proj.bias (default true).
  MultiheadAttentionOptions& bias(bool on) { bias_ = on; return *this; }
  // Inputs and output as [N, L, E] instead of [L, N, E] (default false, torch's).
  MultiheadAttentionOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  // The key's and the value's feature sizes (default embed_dim). Either differing from embed_dim
  // gives separate q_proj_weight, k_proj_weight, v_proj_weight instead of in_proj_weight (torch's).
  MultiheadAttentionOptions& kdim(int64_t d) { kdim_ = d; return *this; }
  MultiheadAttentionOptions& vdim(int64_t d) { vdim_ = d; return *this; }
  // The parameters' dtype (default float32).
  MultiheadAttentionOptions& dtype(DType d) { dtype_ = d; return *this; }
  // A seed for the layer's own Generator, used for the initial weights and the dropout masks;
  // without one, weights come from the Generator given to the constructor (or default_generator())
  // and masks from default_generator().
  MultiheadAttentionOptions& seed(uint64_t s) { seed_ = s; return *this; }

  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_heads() const { return num_heads_; }
  double dropout() const { return dropout_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }
  int64_t kdim() const { return kdim_.value_or(embed_dim_); }
  int64_t vdim() const { return vdim_.value_or(embed_dim_); }
  DType dtype() const { return dtype_; }
  const std::optional<uint64_t>& seed() const { return seed_; }

 private:
  int64_t embed_dim_, num_heads_;
  double dropout_ = 0.0;
  bool bias_ = true;
  bool batch_first_ = false;
  std::optional<int64_t> kdim_, vdim_;
  DType dtype_ = DType::float32;
  std::optional<uint64_t> seed_;
};

// MultiheadAttention::forward's result. weights is undefined when need_weights is false.
struct MultiheadAttentionOutput {
  Tensor output;
  Tensor weights;
};

// torch.nn.MultiheadAttention. E = embed_dim, H = num_heads, d = E / H per head:
//   q = query W_q^T + b_q,  k = key W_k^T + b_k,  v = value W_v^T + b_v     (each [N, ., E])
//   split each into H heads of d features; per head: attention as above with scale 1 / sqrt(d)
//   output = concat(heads) W_out^T + b_out
// Parameters, torch's names, shapes, order and initialisation (so nn::save/load read torch's state
// dicts):
//   in_proj_weight [3E, E]   (W_q, W_k, W_v stacked) xavier_uniform; when kdim or vdim != E instead
//     q_proj_weight [E, E], k_proj_weight [E, kdim], v_proj_weight [E, vdim], each xavier_uniform
//   in_proj_bias   [3E]      zeros                        (not with bias(false))
//   out_proj.weight [E, E]   U(-1/sqrt(E), 1/sqrt(E)) (torch's Linear default, kaiming_uniform(a=sqrt(5)))
//   out_proj.bias   [E]      zeros                        (not with bias(false))
// Drawn as torch draws them: out_proj.weight first (torch builds out_proj before
// _reset_parameters), then the in-projection weights. out_proj is an nn::Dense child (torch's
// NonDynamicallyQuantizableLinear is a Linear). Not offered: add_bias_kv, add_zero_attn.
class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  // The same, drawing the weights from `gen` (unless the options carry a seed).
  MultiheadAttention(const MultiheadAttentionOptions& options, Generator& gen);

  // Shapes (N batch, L target length, S source length; batch_first swaps the first two dims of
  // query, key, value and output; unbatched: all three 2-D, no N anywhere):
  //   query [L, N, E], key [S, N, kdim], value [S, N, vdim]
  //   key_padding_mask [N, S] (unbatched [S]): keys to ignore per sequence, usually masked(pad)
  //   attn_mask [L, S] or [N * H, L, S] (unbatched [H, L, S]), torch's layout (batch-major heads)
  //   is_causal: with no attn_mask, the causal mask; with one, a hint that it is causal, which
  //     changes nothing (torch's hint; torch requires the mask, chainrule builds it)
  //   output [L, N, E]; weights [N, L, S] averaged over heads, or [N, H, L, S] with
  //     average_attn_weights false (unbatched [L, S], [H, L, S]), after dropout (as torch's)
  // std::invalid_argument naming MultiheadAttention::forward and the shapes for anything else.
  MultiheadAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const AttentionMask& key_padding_mask = AttentionMask(), bool need_weights = true,
                                   const AttentionMask& attn_mask = AttentionMask(), bool average_attn_weights = true,
                                   bool is_causal = false);
  // Self-attention, forward(x, x, x) without masks, the output only (what nn::Sequential calls).
  Tensor forward(const Tensor& x) override;

  // Handles to the parameters (undefined when not registered, see above).
  const Tensor& in_proj_weight() const { return in_proj_weight_; }
  const Tensor& q_proj_weight() const { return q_proj_weight_; }
  const Tensor& k_proj_weight() const { return k_proj_weight_; }
  const Tensor& v_proj_weight() const { return v_proj_weight_; }
  const Tensor& in_proj_bias() const { return in_proj_bias_; }
  const std::shared_ptr<Dense>& out_proj() const { return out_proj_; }
  const MultiheadAttentionOptions& options() const { return options_; }

  // "embed_dim=16, num_heads=4" and, when not the default, ", dropout=0.1", ", batch_first=true",
  // ", kdim=.., vdim=..", ", bias=false", ", dtype=float64" (torch prints nothing here: the number of
  // heads is worth seeing).
  std::string extra_repr() const override;

 private:
  MultiheadAttentionOptions options_;
  Tensor in_proj_weight_, q_proj_weight_, k_proj_weight_, v_proj_weight_, in_proj_bias_;
  std::shared_ptr<Dense> out_proj_;
  std::optional<Generator> own_;  // with a seed: initialisation, then dropout masks
};

}  // namespace chainrule::nn
