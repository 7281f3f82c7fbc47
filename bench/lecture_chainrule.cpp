// lecture/chainrule_scalar and lecture/chainrule_tensor: the lecture network written the way a
// chainrule user would write it.
//   - Scalar: neuron by neuron (lecture::epoch_cost, shared with the scalar peers), 13 leaves, one
//     graph per epoch, backward(), set_value() updates, zero_grad().
//   - Scalar with dot (chainrule_scalar_dot): the same, each neuron's w . x + b one dot() node
//     instead of 2n binary ones, the inputs x as plain numbers (the peers have no such op; a
//     system of its own, not a substitute).
//   - Tensor: float64, X [10,2] @ W1^T + b1 -> sigmoid -> @ W2^T + b2 -> sigmoid, cost
//     0.5 * sum((yhat - y)^2), backward(), in-place -= under NoGradGuard, zero_grad().
#include <array>
#include <span>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "bench/lecture.h"

namespace chainrule::bench::lecture {
namespace {

// The lecture's cost with each neuron's w . x + b as one dot() node.
Scalar epoch_cost_dot(std::array<Scalar, kParams>& p) {
  Scalar cost = 0.0;
  for (int n = 0; n < kObservations; ++n) {
    std::array<Scalar, kHidden> h;
    for (int j = 0; j < kHidden; ++j) h[j] = sigmoid(dot(std::span(&p[j * kInputs], kInputs), kX[n], p[6 + j]));
    const Scalar error = sigmoid(dot(h, std::span(&p[9], kHidden), p[12])) - kY[n];
    cost = cost + error * error;
  }
  return 0.5 * cost;
}

template <bool kDot>
class ScalarNet {
 public:
  ScalarNet() {
    const auto init = kInitial.flat();
    for (int k = 0; k < kParams; ++k) p_[k] = Scalar::leaf(init[k]);
  }

  double epoch() {
    double cost_value;
    {
      const Scalar cost =
          kDot ? epoch_cost_dot(p_) : epoch_cost<Scalar>(p_, [](const Scalar& z) { return sigmoid(z); });
      cost.backward();
      cost_value = cost.value();
    }  // the graph's handles die here, so the tape is reused next epoch
    for (Scalar& p : p_) {
      p.set_value(p.value() - kLearningRate * p.grad());
      p.zero_grad();
    }
    return cost_value;
  }

  std::array<double, kParams> params() const {
    std::array<double, kParams> out;
    for (int k = 0; k < kParams; ++k) out[k] = p_[k].value();
    return out;
  }

 private:
  std::array<Scalar, kParams> p_;
};

class TensorNet {
 public:
  TensorNet() {
    std::vector<double> x, y;
    for (int n = 0; n < kObservations; ++n) {
      x.push_back(kX[n][0]);
      x.push_back(kX[n][1]);
      y.push_back(kY[n]);
    }
    const auto p = kInitial.flat();
    const auto f64 = TensorOptions(DType::float64);
    const auto param = TensorOptions(DType::float64).requires_grad(true);
    x_ = from_vector(x, {kObservations, kInputs}, f64);
    y_ = from_vector(y, {kObservations, 1}, f64);
    w1_ = from_vector({p.begin(), p.begin() + 6}, {kHidden, kInputs}, param);
    b1_ = from_vector({p.begin() + 6, p.begin() + 9}, {kHidden}, param);
    w2_ = from_vector({p.begin() + 9, p.begin() + 12}, {1, kHidden}, param);
    b2_ = from_vector({p[12]}, {1}, param);
  }

  double epoch() {
    double cost_value;
    {
      const Tensor h = sigmoid(matmul(x_, transpose(w1_, 0, 1)) + b1_);
      const Tensor yhat = sigmoid(matmul(h, transpose(w2_, 0, 1)) + b2_);
      const Tensor error = yhat - y_;
      const Tensor cost = sum(error * error) * 0.5;
      cost.backward();
      cost_value = cost.item();
    }
    NoGradGuard no_grad;
    for (Tensor* p : {&w1_, &b1_, &w2_, &b2_}) {
      *p -= p->grad() * kLearningRate;
      p->zero_grad();
    }
    return cost_value;
  }

  std::array<double, kParams> params() const {
    std::array<double, kParams> out;
    int k = 0;
    for (const Tensor* p : {&w1_, &b1_, &w2_, &b2_})
      for (double v : p->to_vector()) out[k++] = v;
    return out;
  }

 private:
  Tensor x_, y_, w1_, b1_, w2_, b2_;
};

[[maybe_unused]] const bool scalar_registered = add<ScalarNet<false>>("chainrule_scalar");
[[maybe_unused]] const bool dot_registered = add<ScalarNet<true>>("chainrule_scalar_dot");
[[maybe_unused]] const bool tensor_registered = add<TensorNet>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::lecture
