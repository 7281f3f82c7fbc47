#pragma once
// Internal to nn/attention*.cpp: the attention both scaled_dot_product_attention and
// MultiheadAttention run, once their inputs are checked.
#include "autograd/tensor.h"

namespace chainrule::nn::detail {

struct Attended {
  Tensor output;   // [..., L, Ev]
  Tensor weights;  // [..., L, S], after dropout
};

// softmax(q k^T * scale + bias) v, rows that are all -inf giving 0; the weights multiplied by a
// dropout mask drawn from `gen` when dropout_p > 0. bias undefined: none. Shapes already checked.
Attended attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, double scale,
                double dropout_p, Generator& gen);

// std::invalid_argument "<op>: <what> must be in [0, 1], got <p>" unless it is.
void check_probability(const char* op, const char* what, double p);

}  // namespace chainrule::nn::detail
