#include "nn/conv.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "nn/conv_detail.h"

namespace chainrule::nn {

using namespace conv_detail;

namespace {

// conv1d's and conv2d's operands: the weight [O, C / groups, k...] (`expected` spells it), x's
// channels, groups, the bias [O] and the dtypes.
void check_conv_operands(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, const char* op,
                         const char* expected) {
  if (!weight.defined() || weight.dim() != x.dim())
    throw std::invalid_argument(fmt::format("{}: expected a weight {}, got {}", op, expected,
                                            weight.defined() ? weight.shape().str() : "an undefined tensor"));
  if (groups < 1) throw std::invalid_argument(fmt::format("{}: groups must be >= 1, got {}", op, groups));
  const int64_t o = weight.size(0), c = weight.size(1);
  if (groups == 1 && x.size(1) != c)
    throw std::invalid_argument(fmt::format("{}: the input {} has {} channels but the weight {} expects {}", op,
                                            x.shape().str(), x.size(1), weight.shape().str(), c));
  // Divided, not c * groups: no overflow for a huge groups.
  if (groups > 1 && (x.size(1) % groups != 0 || x.size(1) / groups != c))
    throw std::invalid_argument(fmt::format("{}: the input {} has {} channels but the weight {} with groups={} "
                                            "expects {} per group",
                                            op, x.shape().str(), x.size(1), weight.shape().str(), groups, c));
  if (o % groups != 0)
    throw std::invalid_argument(fmt::format("{}: the weight {} has {} out channels, not divisible by groups={}", op,
                                            weight.shape().str(), o, groups));
  if (bias.defined() && bias.shape() != Shape{o})
    throw std::invalid_argument(fmt::format("{}: bias has shape {}, expected [{}] (the weight's out channels)", op,
                                            bias.shape().str(), o));
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && t->dtype() != x.dtype())
      throw std::invalid_argument(fmt::format("{}: the input is {} but the {} is {}; convert one with .to()", op,
                                              dtype_name(x.dtype()), t == &weight ? "weight" : "bias",
                                              dtype_name(t->dtype())));
}

// A grouped convolution's product: the weight [O, Cg, kh, kw] as [G, Og, K] (K = Cg * kh * kw)
// times the columns [N, C * kh * kw, L] as [N, G, K, L] (each group's rows are contiguous, since
// unfold orders them by channel first) -> [N, G, Og, L] as [N, O, L].
Tensor grouped_product(const Tensor& weight, Tensor columns, int64_t groups) {
  const int64_t n = columns.size(0), k = columns.size(1) / groups, l = columns.size(2), o = weight.size(0);
  // The weight expanded over the batch (a copy of N small weights; its gradient sums back): one
  // weight per product is matmul's fast backward, which a batch broadcast is not (depthwise
  // measured about 1.7x faster so).
  const int64_t og = o / groups;
  Tensor y = matmul(expand(reshape(weight, {groups, og, k}), {n, groups, og, k}),
                    reshape(std::move(columns), {n, groups, k, l}));
  return reshape(std::move(y), {n, o, l});
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  check_image(x, "conv2d");
  check_conv_operands(x, weight, bias, groups, "conv2d", "[O, C / groups, kh, kw]");
  const int64_t o = weight.size(0);
  const Window2d w{.kernel = {weight.size(2), weight.size(3)}, .stride = stride, .padding = padding, .dilation = dilation};
  Tensor columns = unfold(x, w);  // [N, C * kh * kw, OH * OW]; checks the window
  const int64_t n = x.size(0), k = columns.size(1);
  const auto [oh, ow] = w.output_size(x.size(2), x.size(3));
  // [O, K] @ [N, K, L], the weight broadcast over the batch: N products, each image's written in
  // place in [N, O, L] (no permute of the columns or of the result), and in the backward the
  // weight's gradient added up product by product (matmul's rule for a shared operand).
  // groups == 1 keeps to this one product (the benchmarked path).
  Tensor y = groups == 1 ? matmul(reshape(weight, {o, k}), columns) : grouped_product(weight, std::move(columns), groups);
  if (bias.defined()) y = y + reshape(bias, {o, 1});
  return reshape(std::move(y), {n, o, oh, ow});
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  check_signal(x, "conv1d");
  check_conv_operands(x, weight, bias, groups, "conv1d", "[O, C / groups, k]");
  const Window1d w{.kernel = weight.size(2), .stride = stride, .padding = padding, .dilation = dilation};
  w.check("conv1d");
  w.check_length(x, "conv1d");
  const Window2d image = w.as_2d();
  return as_signal(conv2d(as_image(x), unsqueeze(weight, 2), bias, image.stride, image.padding, image.dilation,
                          groups));
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride, Padding padding,
              std::array<int64_t, 2> dilation, int64_t groups) {
  check_image(x, "conv2d");
  check_conv_operands(x, weight, bias, groups, "conv2d", "[O, C / groups, kh, kw]");
  const std::array<int64_t, 2> kernel{weight.size(2), weight.size(3)};
  Window2d{.kernel = kernel, .stride = stride, .dilation = dilation}.check("conv2d");
  const std::vector<int64_t> pads = layer_pads<2>("conv2d", padding, {0, 0}, kernel, dilation, stride);
  if (conv_pads_itself(PaddingMode::Zeros, pads)) return conv2d(x, weight, bias, stride, {pads[2], pads[0]}, dilation, groups);
  return conv2d(pad(x, pads), weight, bias, stride, {0, 0}, dilation, groups);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, Padding padding,
              int64_t dilation, int64_t groups) {
  check_signal(x, "conv1d");
  check_conv_operands(x, weight, bias, groups, "conv1d", "[O, C / groups, k]");
  Window1d{.kernel = weight.size(2), .stride = stride, .padding = 0, .dilation = dilation}.check("conv1d");
  const std::vector<int64_t> pads = layer_pads<1>("conv1d", padding, {0}, {weight.size(2)}, {dilation}, {stride});
  if (conv_pads_itself(PaddingMode::Zeros, pads)) return conv1d(x, weight, bias, stride, pads[0], dilation, groups);
  return conv1d(pad(x, pads), weight, bias, stride, 0, dilation, groups);
}

}  // namespace chainrule::nn
