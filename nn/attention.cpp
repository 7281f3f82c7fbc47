#include "nn/attention.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "nn/activation.h"
#include "nn/attention_core.h"
#include "nn/dropout.h"
#include "nn/init.h"

namespace chainrule::nn {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Softmax over the last dim, except that a row whose scores are all -inf (no key left to attend
// to) gives 0 instead of 0/0 = NaN, as torch's _safe_softmax. Its input is replaced by 0 first, so
// that no NaN arises in the branch not taken: where() selects gradients, so those rows get 0.
Tensor safe_softmax(const Tensor& scores) {
  const Tensor dead = equal(max(scores.detach(), {-1}, true), Tensor(-kInf));
  if (sum(dead).item() == 0) return softmax(scores, -1);
  return where(dead, 0.0, softmax(where(dead, 0.0, scores), -1));
}

Shape batch_of(const Tensor& t) {
  Shape s;
  for (int i = 0; i + 2 < t.dim(); ++i) s.push_back(t.size(i));
  return s;
}

// The scores' shape [..., L, S] for checked q, k, v; std::invalid_argument naming all three when
// their batch dims do not broadcast.
Shape scores_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  Shape s;
  try {
    s = broadcast_shapes(broadcast_shapes(batch_of(q), batch_of(k), op), batch_of(v), op);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(fmt::format("{}: the batch dims of query {}, key {} and value {} do not broadcast", op,
                                            q.shape().str(), k.shape().str(), v.shape().str()));
  }
  s.push_back(q.size(-2));
  s.push_back(k.size(-2));
  return s;
}

void check_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (!q.defined() || !k.defined() || !v.defined())
    throw std::invalid_argument(fmt::format("{}: query, key and value must all be defined", op));
  const auto shapes = [&] { return fmt::format("query {}, key {}, value {}", q.shape().str(), k.shape().str(), v.shape().str()); };
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2)
    throw std::invalid_argument(fmt::format("{}: query, key and value need at least 2 dims ([..., L, E]), got {}", op, shapes()));
  if (q.size(-1) != k.size(-1))
    throw std::invalid_argument(fmt::format("{}: query and key must have the same last dim E, got {}", op, shapes()));
  if (k.size(-2) != v.size(-2))
    throw std::invalid_argument(fmt::format("{}: key and value must have the same length S (dim -2), got {}", op, shapes()));
  if (k.size(-2) == 0) throw std::invalid_argument(fmt::format("{}: there must be at least one key, got {}", op, shapes()));
  if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
    throw std::invalid_argument(fmt::format("{}: query, key and value must have one dtype, got {}, {} and {}", op,
                                            dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype())));
}

}  // namespace

Tensor AttentionMask::bias(DType dtype, const std::string& op) const {
  if (!tensor_.defined()) throw std::invalid_argument(op + ": the " + str() + " mask's tensor is undefined");
  switch (kind_) {
    case Kind::allowed: return where(tensor_, zeros({}, dtype), full({}, -kInf, dtype));
    case Kind::masked: return where(tensor_, full({}, -kInf, dtype), zeros({}, dtype));
    case Kind::additive:
      if (tensor_.dtype() != dtype)
        throw std::invalid_argument(fmt::format("{}: the additive mask is {} but the scores are {}; convert it with .to(DType::{})",
                                                op, dtype_name(tensor_.dtype()), dtype_name(dtype), dtype_name(dtype)));
      return tensor_;
    case Kind::none: break;
  }
  throw std::logic_error(op + ": AttentionMask::bias called on no mask");
}

std::string AttentionMask::str() const {
  const char* kind = kind_ == Kind::allowed ? "allowed" : kind_ == Kind::masked ? "masked" : "additive";
  if (kind_ == Kind::none) return "none";
  return fmt::format("{} {}", kind, tensor_.defined() ? tensor_.shape().str() : "(undefined)");
}

Generator& SDPAOptions::generator() const { return generator_ ? *generator_ : default_generator(); }

Tensor causal_mask(int64_t l, int64_t s, DType dtype) {
  if (l < 0 || s < 0) throw std::invalid_argument(fmt::format("causal_mask: sizes must be >= 0, got {} and {}", l, s));
  const Shape shape{l, s};  // throws if l * s overflows, before it is computed below
  std::vector<double> m(static_cast<std::size_t>(shape.numel()), 0.0);
  for (int64_t i = 0; i < l; ++i)
    for (int64_t j = i + 1; j < s; ++j) m[static_cast<std::size_t>(i * s + j)] = -kInf;
  return from_vector(m, shape, dtype);
}

namespace detail {

Attended attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, double scale, double dropout_p,
                Generator& gen) {
  Tensor scores = matmul(q, transpose(k, -2, -1)) * scale;
  if (bias.defined()) scores = scores + bias;
  // Without a mask no row can be all -inf (short of infinite inputs): plain softmax, one check less.
  Tensor weights = bias.defined() ? safe_softmax(scores) : softmax(scores, -1);
  if (dropout_p > 0) weights = dropout(weights, dropout_p, true, gen, "scaled_dot_product_attention");
  return {matmul(weights, v), weights};
}

void check_probability(const char* op, const char* what, double p) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(fmt::format("{}: {} must be in [0, 1], got {}", op, what, p));
}

}  // namespace detail

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& options) {
  const char* op = "scaled_dot_product_attention";
  check_inputs(op, q, k, v);
  const Shape scores = scores_shape(op, q, k, v);
  detail::check_probability(op, "dropout_p", options.dropout_p());
  const double scale = options.scale().value_or(1 / std::sqrt(static_cast<double>(q.size(-1))));
  if (!std::isfinite(scale)) throw std::invalid_argument(fmt::format("{}: scale must be finite, got {}", op, scale));
  const AttentionMask& mask = options.attn_mask();
  if (mask.defined() && options.is_causal())
    throw std::invalid_argument(fmt::format("{}: give attn_mask ({}) or is_causal, not both (as torch)", op, mask.str()));
  Tensor bias;
  if (options.is_causal()) bias = causal_mask(q.size(-2), k.size(-2), q.dtype());
  if (mask.defined()) {
    bias = mask.bias(q.dtype(), op);
    bool fits = true;
    try {
      fits = broadcast_shapes(bias.shape(), scores, op) == scores;
    } catch (const std::invalid_argument&) {
      fits = false;
    }
    if (!fits)
      throw std::invalid_argument(fmt::format("{}: attn_mask {} does not broadcast to the scores' shape {} ([..., L, S])",
                                              op, bias.shape().str(), scores.str()));
  }
  return detail::attend(q, k, v, bias, scale, options.dropout_p(), options.generator()).output;
}

}  // namespace chainrule::nn
