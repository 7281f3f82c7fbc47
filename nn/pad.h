#pragma once
// Padding of a tensor's last dims, as torch.nn.functional.pad: the border a convolution sees
// (nn::Conv2d's padding_mode, padding=kSame with an even kernel) or any other. A composition of
// autograd ops (slice, concat, full, index_select; autograd/ops.h): no derivative is defined here,
// so gradcheck and create_graph work through it. The gradient of each output element goes to the
// input element it was copied from (several, for reflect/replicate/circular, add up); constant
// padding has none.
//
// pads are given last dim first, in pairs: {left, right} pads dim -1, {left, right, top, bottom}
// dims -1 and -2, and so on (at most one pair per dim of x). Along a dim of size n padded by
// (l, r), output element i (from -l to n + r - 1, in input coordinates) is
//   constant:  x[i] for 0 <= i < n, else value
//   reflect:   x[-i] for i < 0, x[2 (n - 1) - i] for i >= n (mirrored about the edge, which is not
//              repeated): [1, 2, 3] by (2, 2) -> [3, 2, 1, 2, 3, 2, 1]; needs l, r < n
//   replicate: x[clamp(i, 0, n - 1)] (the edge repeated): [1, 2, 3] by (2, 1) -> [1, 1, 1, 2, 3, 3]
//   circular:  x[i mod n] (wrapped around): [1, 2, 3] by (2, 1) -> [2, 3, 1, 2, 3, 1]; needs l, r <= n
// A negative l or r crops that side instead (in every mode, as torch's constant and circular
// modes), by at most n; the result's size n + l + r must be >= 0.
//
// torch only pads 1 to 3 trailing dims of a batched input in the non-constant modes; here every
// mode pads any trailing dims.
//
//   Tensor x = tensor({{{1.0, 2.0, 3.0}}});                   // [1, 1, 3]
//   nn::pad(x, {1, 2});                                      // [[[0, 1, 2, 3, 0, 0]]]
//   nn::pad(x, {2, 0}, nn::PadMode::Reflect);                // [[[3, 2, 1, 2, 3]]]
//   nn::pad(images, {1, 1, 1, 1}, nn::PadMode::Replicate);  // [N, C, H, W] -> [N, C, H + 2, W + 2]
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace chainrule::nn {

// torch.nn.functional.pad's modes.
enum class PadMode { Constant, Reflect, Replicate, Circular };
// torch's name of it: "constant", "reflect", "replicate", "circular".
const char* pad_mode_name(PadMode mode);

// x padded by pads (last dim first, pairs {left, right}); value fills the constant mode's border
// (other modes ignore it). std::invalid_argument naming pad, the input's shape and the pads for an
// undefined x, an odd number of pads or more pairs than x has dims, a crop beyond the dim, a
// result size below 0, or a pad a mode cannot fill (reflect: >= n; circular: > n; replicate of an empty dim). No pads, or
// all 0, return x itself.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Constant, double value = 0);

}  // namespace chainrule::nn
