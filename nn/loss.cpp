#include "nn/loss.h"

#include <fmt/format.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>

#include "nn/activation.h"

namespace chainrule::nn {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

namespace {

Tensor reduce(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Mean: return mean(l);
    case Reduction::Sum: return sum(l);
  }
  return l;
}

void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  if (!input.defined() || !target.defined())
    throw std::invalid_argument(fmt::format("{}: the {} is undefined", op, input.defined() ? "target" : "input"));
  if (!(input.shape() == target.shape()))
    throw std::invalid_argument(fmt::format("{}: input shape {} and target shape {} differ (they must be equal; "
                                            "reshape the target, e.g. [N] -> [N, 1])",
                                            op, input.shape().str(), target.shape().str()));
  if (input.dtype() != target.dtype())
    throw std::invalid_argument(fmt::format("{}: input is {} but target is {}; convert one with .to(DType::...)", op,
                                            dtype_name(input.dtype()), dtype_name(target.dtype())));
}

// A constant tensor (never recorded) from a computation on values only.
template <class F>
Tensor constant(F f) {
  NoGradGuard no_grad;
  return f();
}

// max(log p, -100) as torch's BCELoss, built so that no NaN or inf reaches the gradient: below
// the threshold the log is taken of 1 instead of p (masked out afterwards) and replaced by -100.
Tensor clamped_log(const Tensor& p) {
  // In float32, 1/p overflows below the smallest normal float, so the clamp starts there (log = -87.3).
  const double floor = p.dtype() == DType::float32 ? std::max(std::exp(-100.0), double(FLT_MIN)) : std::exp(-100.0);
  const Tensor keep = constant([&] { return step(p.detach() - floor); });  // 1 where p > floor
  const Tensor safe = p * keep + (1.0 - keep);
  return log(safe) * keep + (keep - 1.0) * 100.0;
}

}  // namespace

// ---- MSE ----

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossOptions& options) {
  check_pair(input, target, "MSELoss");
  Tensor d = input - target;
  Tensor l = d * d;
  // The lecture's 1/2: its derivative is then the plain error y_hat - y.
  if (options.half()) l = l * 0.5;
  return reduce(l, options.reduction());
}

std::string MSELoss::to_string() const {
  return fmt::format("MSELoss(reduction={}, half={})", reduction_name(options_.reduction()), options_.half());
}

// ---- BCE ----

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCELossOptions& options) {
  check_pair(input, target, "BCELoss");
  const std::vector<double> p = input.to_vector();
  for (size_t i = 0; i < p.size(); ++i)
    if (!(p[i] >= 0.0 && p[i] <= 1.0))
      throw std::invalid_argument(fmt::format(
          "BCELoss: the input must hold probabilities in [0, 1], got {} at flat index {} (shape {}); apply "
          "Sigmoid first, or use BCEWithLogitsLoss on logits",
          p[i], i, input.shape().str()));
  Tensor l = -(target * clamped_log(input) + (1.0 - target) * clamped_log(1.0 - input));
  return reduce(l, options.reduction());
}

std::string BCELoss::to_string() const {
  return fmt::format("BCELoss(reduction={})", reduction_name(options_.reduction()));
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCELossOptions& options) {
  check_pair(input, target, "BCEWithLogitsLoss");
  // max(z, 0) = z * m and |z| = z * (2m - 1) with the constant mask m = [z > 0]. Unlike relu(z) and
  // abs(z), whose derivatives at 0 are both taken as 0, these keep the sum smooth: at z = 0 the
  // gradient is sigmoid(0) - y = 1/2 - y, not -y.
  const Tensor m = constant([&] { return step(input.detach()); });
  const Tensor z_abs = input * (m * 2.0 - 1.0);
  // z (m - y), not z m - z y: at z = +inf with y < 1 that is inf - inf = NaN (PyTorch gives inf).
  Tensor l = input * (m - target) + log(exp(-z_abs) + 1.0);
  return reduce(l, options.reduction());
}

std::string BCEWithLogitsLoss::to_string() const {
  return fmt::format("BCEWithLogitsLoss(reduction={})", reduction_name(options_.reduction()));
}

// ---- cross entropy ----

namespace {

struct Logits {
  int64_t n, c;
  bool single;  // input [C]
};

Logits check_logits(const Tensor& input) {
  if (!input.defined()) throw std::invalid_argument("CrossEntropyLoss: the input is undefined");
  if (input.dim() == 2) return {input.size(0), input.size(1), false};
  if (input.dim() == 1) return {1, input.size(0), true};
  throw std::invalid_argument(fmt::format(
      "CrossEntropyLoss: expected logits of shape [N, C] or [C], got {}", input.shape().str()));
}

Tensor from_probabilities(const Tensor& input, const Tensor& t, const Logits& s, Reduction r) {
  const int64_t dim = s.single ? 0 : 1;
  Tensor l = -sum(log_softmax(input, dim) * t, {dim});  // [N], or [] for a single sample
  return reduce(l, r);
}

}  // namespace

Tensor cross_entropy(const Tensor& input, const std::vector<int64_t>& target, const CrossEntropyLossOptions& options) {
  const Logits s = check_logits(input);
  if (static_cast<int64_t>(target.size()) != s.n)
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: input {} holds {} sample(s) but {} class indices were "
                                            "given",
                                            input.shape().str(), s.n, target.size()));
  std::vector<double> one_hot(static_cast<size_t>(s.n * s.c), 0.0);
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t k = target[static_cast<size_t>(i)];
    if (k < 0 || k >= s.c)
      throw std::out_of_range(fmt::format("CrossEntropyLoss: class index {} (target {}) is out of range for {} "
                                          "classes (valid: 0 to {})",
                                          k, i, s.c, s.c - 1));
    one_hot[static_cast<size_t>(i * s.c + k)] = 1.0;
  }
  // One node: l_n = -log_softmax(x_n)[c_n], read at the index (a one-hot mask times log_softmax
  // gave 0 * -inf = NaN for a logit of -inf in another class, the masking idiom, where PyTorch's
  // gather gives a number), with the rule dl_n/dx_n = softmax(x_n) - onehot_n written as Tensor
  // ops, so that create_graph differentiates it again.
  const int64_t dim = s.single ? 0 : 1;
  const Tensor mask = from_vector(one_hot, input.shape(), input.dtype());
  const Tensor l = custom_op(
      "cross_entropy", {input},
      [dim, s, target](const std::vector<Tensor>& in) {  // by value: kept for gradcheck's replays
        const std::vector<double> log_p = log_softmax(in[0], dim).to_vector();
        std::vector<double> picked(static_cast<size_t>(s.n));
        for (int64_t i = 0; i < s.n; ++i)
          picked[static_cast<size_t>(i)] = -log_p[static_cast<size_t>(i * s.c + target[static_cast<size_t>(i)])];
        return from_vector(picked, s.single ? Shape{} : Shape{s.n}, in[0].dtype());
      },
      [dim, single = s.single, n = s.n, mask](const Tensor& grad, const std::vector<Tensor>& in, const Tensor&) {
        const Tensor g = single ? grad : reshape(grad, {n, 1});
        return std::vector<Tensor>{(softmax(in[0], dim) - mask) * g};
      });
  return reduce(l, options.reduction());
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options) {
  const Logits s = check_logits(input);
  if (!target.defined()) throw std::invalid_argument("CrossEntropyLoss: the target is undefined");
  if (target.shape() == input.shape()) {
    if (target.dtype() != input.dtype())
      throw std::invalid_argument(fmt::format("CrossEntropyLoss: input is {} but the probability target is {}",
                                              dtype_name(input.dtype()), dtype_name(target.dtype())));
    return from_probabilities(input, target, s, options.reduction());  // differentiable in both, as PyTorch's
  }
  const bool indices_shape = s.single ? target.numel() == 1 && target.dim() <= 1
                                      : target.dim() == 1 && target.size(0) == s.n;
  if (!indices_shape)
    throw std::invalid_argument(fmt::format("CrossEntropyLoss: for input {} the target must be class indices of shape "
                                            "{} or probabilities of shape {}, got {}",
                                            input.shape().str(), s.single ? "[]" : fmt::format("[{}]", s.n),
                                            input.shape().str(), target.shape().str()));
  std::vector<int64_t> idx;
  const std::vector<double> v = target.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::isfinite(v[i]) && v[i] == std::floor(v[i])))
      throw std::invalid_argument(fmt::format("CrossEntropyLoss: target {} is {}, not an integer class index", i, v[i]));
    // Past 2^62 the cast to int64_t could overflow (undefined); no class count comes near it.
    if (std::abs(v[i]) >= 0x1p62)
      throw std::out_of_range(fmt::format("CrossEntropyLoss: class index {} (target {}) is out of range for {} "
                                          "classes (valid: 0 to {})",
                                          v[i], i, s.c, s.c - 1));
    idx.push_back(static_cast<int64_t>(v[i]));
  }
  return cross_entropy(input, idx, options);
}

std::string CrossEntropyLoss::to_string() const {
  return fmt::format("CrossEntropyLoss(reduction={})", reduction_name(options_.reduction()));
}

}  // namespace chainrule::nn
