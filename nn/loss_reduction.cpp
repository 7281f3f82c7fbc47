#include "nn/loss_reduction.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule::nn {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

Reduction checked_reduction(Reduction r, const char* options) {
  if (r != Reduction::None && r != Reduction::Mean && r != Reduction::Sum)
    throw std::invalid_argument(fmt::format("{}::reduction: {} is not a Reduction (None, Mean or Sum)", options,
                                            static_cast<int>(r)));
  return r;
}

namespace detail {

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

}  // namespace detail

}  // namespace chainrule::nn
