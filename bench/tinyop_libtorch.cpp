// tinyop/libtorch: the chain on one-element float64 LibTorch tensors. Gradients are reset to
// undefined before each chain (zero_grad(set_to_none=True), as chainrule's zero_grad()).
#include <torch/torch.h>

#include "bench/tinyop.h"

namespace chainrule::bench::tinyop {
namespace {

class TorchChain {
 public:
  TorchChain() {
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    w_ = torch::full({1}, kW, f64).set_requires_grad(true);
    b_ = torch::full({1}, kB, f64).set_requires_grad(true);
    y0_ = torch::full({1}, kY0, f64);
  }

  double run() {
    w_.mutable_grad().reset();
    b_.mutable_grad().reset();
    torch::Tensor y = y0_;
    for (int k = 0; k < kLinks; ++k) y = torch::sigmoid(y * w_ + b_);
    y.backward();
    return y.item<double>();
  }
  double grad_w() const { return w_.grad().item<double>(); }
  double grad_b() const { return b_.grad().item<double>(); }

 private:
  torch::Tensor w_, b_, y0_;
};

[[maybe_unused]] const bool registered = add<TorchChain>("libtorch");

}  // namespace
}  // namespace chainrule::bench::tinyop
