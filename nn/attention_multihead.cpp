#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/attention.h"
#include "nn/attention_core.h"

namespace chainrule::nn {

namespace {

const MultiheadAttentionOptions& checked(const MultiheadAttentionOptions& o) {
  const char* op = "MultiheadAttention";
  if (o.embed_dim() < 1) throw std::invalid_argument(fmt::format("{}: embed_dim must be >= 1, got {}", op, o.embed_dim()));
  if (o.num_heads() < 1) throw std::invalid_argument(fmt::format("{}: num_heads must be >= 1, got {}", op, o.num_heads()));
  if (o.embed_dim() % o.num_heads() != 0)
    throw std::invalid_argument(fmt::format("{}: embed_dim ({}) must be divisible by num_heads ({})", op, o.embed_dim(),
                                            o.num_heads()));
  if (o.kdim() < 1 || o.vdim() < 1)
    throw std::invalid_argument(fmt::format("{}: kdim and vdim must be >= 1, got {} and {}", op, o.kdim(), o.vdim()));
  detail::check_probability(op, "dropout", o.dropout());
  return o;
}

std::string shapes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return fmt::format("query {}, key {}, value {}", q.shape().str(), k.shape().str(), v.shape().str());
}

// Throws std::invalid_argument unless `mask` (if given) has one of the shapes listed.
void check_mask_shape(const std::string& op, const char* what, const AttentionMask& mask,
                      std::initializer_list<Shape> allowed, const char* expected) {
  if (!mask.defined()) return;
  if (!mask.tensor().defined()) throw std::invalid_argument(fmt::format("{}: {} is a mask of an undefined tensor", op, what));
  for (const Shape& s : allowed)
    if (mask.tensor().shape() == s) return;
  throw std::invalid_argument(fmt::format("{}: expected {} of shape {}, got {}", op, what, expected, mask.str()));
}

}  // namespace

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options)
    : MultiheadAttention(options, default_generator()) {}

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options, Generator& gen)
    : Module("MultiheadAttention"), options_(checked(options)) {
  if (options.seed()) own_.emplace(*options.seed());
  Generator& g = own_ ? *own_ : gen;
  const int64_t e = options.embed_dim();
  const DType dtype = options.dtype();
  if (options.kdim() == e && options.vdim() == e) {
    in_proj_weight_ = register_parameter("in_proj_weight", zeros({3 * e, e}, dtype));
  } else {
    q_proj_weight_ = register_parameter("q_proj_weight", zeros({e, e}, dtype));
    k_proj_weight_ = register_parameter("k_proj_weight", zeros({e, options.kdim()}, dtype));
    v_proj_weight_ = register_parameter("v_proj_weight", zeros({e, options.vdim()}, dtype));
  }
  if (options.bias()) in_proj_bias_ = register_parameter("in_proj_bias", zeros({3 * e}, dtype));
  // torch builds out_proj (drawing its weight) before _reset_parameters draws the in-projection.
  out_proj_ = register_module(
      "out_proj", std::make_shared<Dense>(DenseOptions(e, e).bias(options.bias()).bias_init(Init::zeros()).dtype(dtype), g));
  for (const Tensor& w : {in_proj_weight_, q_proj_weight_, k_proj_weight_, v_proj_weight_})
    if (w.defined()) Init::xavier_uniform().apply(w, g);
}

MultiheadAttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                     const AttentionMask& key_padding_mask, bool need_weights,
                                                     const AttentionMask& attn_mask, bool average_attn_weights,
                                                     bool is_causal) {
  const std::string op = "MultiheadAttention::forward";
  if (!query.defined() || !key.defined() || !value.defined())
    throw std::invalid_argument(op + ": query, key and value must all be defined");
  if (!out_proj_)
    throw std::logic_error(op + ": this MultiheadAttention has no parameters (it was moved from)");
  const int dims = query.dim();
  if ((dims != 2 && dims != 3) || key.dim() != dims || value.dim() != dims)
    throw std::invalid_argument(fmt::format("{}: query, key and value must be all 3-D (batched) or all 2-D (unbatched), got {}",
                                            op, shapes_of(query, key, value)));
  const bool batched = dims == 3, bf = options_.batch_first();
  const int64_t e = options_.embed_dim(), heads = options_.num_heads();
  if (query.size(-1) != e || key.size(-1) != options_.kdim() || value.size(-1) != options_.vdim())
    throw std::invalid_argument(fmt::format("{}: expected the last dims of query, key and value to be embed_dim={}, kdim={}, "
                                            "vdim={}, got {}", op, e, options_.kdim(), options_.vdim(), shapes_of(query, key, value)));
  for (int i = 0; i + 1 < dims; ++i)
    if (key.size(i) != value.size(i))
      throw std::invalid_argument(fmt::format("{}: key and value must have the same leading dims, got {}", op,
                                              shapes_of(query, key, value)));
  const int64_t n = !batched ? 1 : query.size(bf ? 0 : 1), l = query.size(batched && !bf ? 0 : dims - 2);
  const int64_t s = key.size(batched && !bf ? 0 : dims - 2);
  if (batched && key.size(bf ? 0 : 1) != n)
    throw std::invalid_argument(fmt::format("{}: query and key must have the same batch size (dim {}), got {}", op,
                                            bf ? 0 : 1, shapes_of(query, key, value)));
  if (s == 0) throw std::invalid_argument(fmt::format("{}: there must be at least one key, got {}", op, shapes_of(query, key, value)));
  const Tensor& weight = in_proj_weight_.defined() ? in_proj_weight_ : q_proj_weight_;
  for (const Tensor* t : {&query, &key, &value}) check_input_dtype(op.c_str(), *t, weight);
  if (batched)
    check_mask_shape(op, "key_padding_mask", key_padding_mask, {Shape{n, s}}, fmt::format("[N, S] = [{}, {}]", n, s).c_str());
  else
    check_mask_shape(op, "key_padding_mask", key_padding_mask, {Shape{s}}, fmt::format("[S] = [{}]", s).c_str());
  check_mask_shape(op, "attn_mask", attn_mask, {Shape{l, s}, Shape{n * heads, l, s}},
                   fmt::format("[L, S] = [{}, {}] or [{}, L, S] = [{}, {}, {}]", l, s, batched ? "N * num_heads" : "num_heads",
                               n * heads, l, s).c_str());

  // The masks as one additive term broadcasting to the scores [N, H, L, S] (bias() checks dtypes).
  const DType dtype = weight.dtype();
  Tensor bias;
  const auto add = [&bias](const Tensor& t) { bias = bias.defined() ? bias + t : t; };
  if (attn_mask.defined()) {
    const Tensor b = attn_mask.bias(dtype, op);
    add(b.dim() == 3 ? reshape(b, {n, heads, l, s}) : b);
  } else if (is_causal) {
    add(causal_mask(l, s, dtype));
  }
  if (key_padding_mask.defined()) add(reshape(key_padding_mask.bias(dtype, op), {n, 1, 1, s}));

  // [N, T, F] (batch major), projected to [N, T, E], split into heads: [N, H, T, E / H].
  const auto batch_major = [&](const Tensor& t) { return !batched ? unsqueeze(t, 0) : bf ? t : transpose(t, 0, 1); };
  const auto split = [&](const Tensor& t, const Tensor& w, int64_t block) {
    const Tensor b = in_proj_bias_.defined() ? slice(in_proj_bias_, 0, block * e, (block + 1) * e) : Tensor();
    const Tensor y = linear(batch_major(t), w, b);
    return permute(reshape(y, {n, y.size(1), heads, e / heads}), {0, 2, 1, 3});
  };
  const auto w_in = [&](int64_t block, const Tensor& separate) {
    return in_proj_weight_.defined() ? slice(in_proj_weight_, 0, block * e, (block + 1) * e) : separate;
  };
  const double p = is_training() ? options_.dropout() : 0.0;
  Generator& gen = own_ ? *own_ : default_generator();
  const detail::Attended a = detail::attend(split(query, w_in(0, q_proj_weight_), 0), split(key, w_in(1, k_proj_weight_), 1),
                                            split(value, w_in(2, v_proj_weight_), 2), bias,
                                            1 / std::sqrt(static_cast<double>(e / heads)), p, gen);

  Tensor out = out_proj_->forward(reshape(permute(a.output, {0, 2, 1, 3}), {n, l, e}));
  out = !batched ? squeeze(out, 0) : bf ? out : transpose(out, 0, 1);
  MultiheadAttentionOutput result{out, Tensor()};
  if (need_weights) {
    const Tensor w = average_attn_weights ? mean(a.weights, {1}) : a.weights;
    result.weights = batched ? w : squeeze(w, 0);
  }
  return result;
}

Tensor MultiheadAttention::forward(const Tensor& x) { return forward(x, x, x, AttentionMask(), false).output; }

std::string MultiheadAttention::extra_repr() const {
  const MultiheadAttentionOptions& o = options_;
  std::string r = fmt::format("embed_dim={}, num_heads={}", o.embed_dim(), o.num_heads());
  if (o.dropout() != 0) r += fmt::format(", dropout={}", o.dropout());
  if (!o.bias()) r += ", bias=false";
  if (o.batch_first()) r += ", batch_first=true";
  if (o.kdim() != o.embed_dim() || o.vdim() != o.embed_dim()) r += fmt::format(", kdim={}, vdim={}", o.kdim(), o.vdim());
  const Tensor w = out_proj_ ? out_proj_->weight() : Tensor();
  if (w.defined() && w.dtype() != DType::float32) r += fmt::format(", dtype={}", dtype_name(w.dtype()));
  return r;
}

}  // namespace chainrule::nn
