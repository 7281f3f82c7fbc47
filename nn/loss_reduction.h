#pragma once
// The reduction every loss applies to its per-element (or per-sample) losses l:
//   None: l itself        Mean: sum(l) / count        Sum: sum(l)
// (KLDivLoss adds batchmean: nn/loss_kl_div.h.)
#include "autograd/tensor.h"

namespace chainrule::nn {

enum class Reduction { None, Mean, Sum };
const char* reduction_name(Reduction r);  // "none", "mean", "sum"
// r itself; std::invalid_argument naming `options` and the value when r is none of the three
// (a cast from an integer).
Reduction checked_reduction(Reduction r, const char* options);

namespace detail {

// l reduced as r says (Mean: over every element).
Tensor reduce(const Tensor& l, Reduction r);
// input and target both defined, of one shape and one dtype; else std::invalid_argument naming op.
void check_pair(const Tensor& input, const Tensor& target, const char* op);

// A constant tensor (never recorded) from a computation on values only.
template <class F>
Tensor constant(F f) {
  NoGradGuard no_grad;
  return f();
}

}  // namespace detail

}  // namespace chainrule::nn
