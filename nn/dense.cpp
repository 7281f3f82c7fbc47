#include "nn/dense.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule::nn {

namespace {

const DenseOptions& checked(const DenseOptions& o) {
  if (o.in_features() < 1)
    throw std::invalid_argument(fmt::format("Dense: in_features must be >= 1, got {}", o.in_features()));
  if (o.out_features() < 1)
    throw std::invalid_argument(fmt::format("Dense: out_features must be >= 1, got {}", o.out_features()));
  return o;
}

}  // namespace

Dense::Dense(const DenseOptions& options) : Dense(options, default_generator()) {}

Dense::Dense(const DenseOptions& options, Generator& gen) : Module("Dense"), options_(checked(options)) {
  const int64_t in = options.in_features(), out = options.out_features();
  weight_ = register_parameter("weight", zeros({out, in}, options.dtype()));
  if (options.bias()) bias_ = register_parameter("bias", zeros({out}, options.dtype()));
  options.init_weight_bias(weight_, bias_, gen);
}

Tensor Dense::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dense::forward: the input is undefined");
  if (!weight_.defined()) throw std::logic_error("Dense::forward: this Dense has no weight (it was moved from)");
  const int64_t in = options_.in_features();
  if (x.dim() < 1 || x.size(-1) != in)
    throw std::invalid_argument(fmt::format(
        "Dense::forward: expected an input of shape [..., {}] (in_features={}), got {}", in, in, x.shape().str()));
  check_input_dtype("Dense::forward", x, weight_);
  return linear(x, weight_, bias_);  // bias_ undefined: no bias
}

std::string Dense::extra_repr() const {
  std::string s = fmt::format("in_features={}, out_features={}, bias={}", options_.in_features(),
                              options_.out_features(), bias_.defined());
  if (weight_.dtype() != DType::float32) s += fmt::format(", dtype={}", dtype_name(weight_.dtype()));
  return s;
}

}  // namespace chainrule::nn
