// tinyop/chainrule_tensor and tinyop/chainrule_scalar: the chain on one-element float64 Tensors
// (the workload's subject), and on Scalars for reference.
#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "bench/tinyop.h"

namespace chainrule::bench::tinyop {
namespace {

class TensorChain {
 public:
  TensorChain()
      : w_(from_vector({kW}, {1}, TensorOptions(DType::float64).requires_grad(true))),
        b_(from_vector({kB}, {1}, TensorOptions(DType::float64).requires_grad(true))),
        y0_(from_vector({kY0}, {1}, DType::float64)) {}

  double run() {
    w_.zero_grad();
    b_.zero_grad();
    Tensor y = y0_;
    for (int k = 0; k < kLinks; ++k) y = sigmoid(y * w_ + b_);
    y.backward();
    return y.item();
  }
  double grad_w() const { return w_.grad().item(); }
  double grad_b() const { return b_.grad().item(); }

 private:
  Tensor w_, b_, y0_;
};

class ScalarChain {
 public:
  double run() {
    w_.zero_grad();
    b_.zero_grad();
    Scalar y = kY0;
    for (int k = 0; k < kLinks; ++k) y = sigmoid(y * w_ + b_);
    y.backward();
    return y.value();
  }
  double grad_w() const { return w_.grad(); }
  double grad_b() const { return b_.grad(); }

 private:
  Scalar w_ = Scalar::leaf(kW), b_ = Scalar::leaf(kB);
};

[[maybe_unused]] const bool tensor_registered = add<TensorChain>("chainrule_tensor");
[[maybe_unused]] const bool scalar_registered = add<ScalarChain>("chainrule_scalar");

}  // namespace
}  // namespace chainrule::bench::tinyop
