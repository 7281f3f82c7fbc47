// lecture/libtorch: LibTorch 1.13, float64, the same ops as lecture/chainrule_tensor:
// X [10,2] @ W1^T + b1 -> sigmoid -> @ W2^T + b2 -> sigmoid, cost 0.5 * sum((yhat - y)^2),
// backward(), in-place update under torch::NoGradGuard, gradients reset to undefined (PyTorch's
// zero_grad(set_to_none=True), the same semantics as chainrule's zero_grad()).
#include <torch/torch.h>

#include "bench/lecture.h"

namespace chainrule::bench::lecture {
namespace {

class TorchNet {
 public:
  TorchNet() {
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    x_ = torch::empty({kObservations, kInputs}, f64);
    y_ = torch::empty({kObservations, 1}, f64);
    for (int n = 0; n < kObservations; ++n) {
      x_[n][0] = kX[n][0];
      x_[n][1] = kX[n][1];
      y_[n][0] = kY[n];
    }
    const auto p = kInitial.flat();
    auto param = [&](int from, int to, torch::IntArrayRef shape) {
      torch::Tensor t = torch::empty(shape, f64);
      auto a = t.view({-1});
      for (int k = from; k < to; ++k) a[k - from] = p[k];
      return t.set_requires_grad(true);
    };
    w1_ = param(0, 6, {kHidden, kInputs});
    b1_ = param(6, 9, {kHidden});
    w2_ = param(9, 12, {1, kHidden});
    b2_ = param(12, 13, {1});
  }

  double epoch() {
    double cost_value;
    {
      const torch::Tensor h = torch::sigmoid(torch::matmul(x_, w1_.t()) + b1_);
      const torch::Tensor yhat = torch::sigmoid(torch::matmul(h, w2_.t()) + b2_);
      const torch::Tensor error = yhat - y_;
      const torch::Tensor cost = (error * error).sum() * 0.5;
      cost.backward();
      cost_value = cost.item<double>();
    }
    torch::NoGradGuard no_grad;
    for (torch::Tensor* p : {&w1_, &b1_, &w2_, &b2_}) {
      *p -= p->grad() * kLearningRate;
      p->mutable_grad().reset();
    }
    return cost_value;
  }

  std::array<double, kParams> params() const {
    std::array<double, kParams> out;
    int k = 0;
    for (const torch::Tensor* p : {&w1_, &b1_, &w2_, &b2_}) {
      const torch::Tensor flat = p->detach().contiguous().view({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) out[k++] = flat[i].item<double>();
    }
    return out;
  }

 private:
  torch::Tensor x_, y_, w1_, b1_, w2_, b2_;
};

[[maybe_unused]] const bool registered = add<TorchNet>("libtorch");

}  // namespace
}  // namespace chainrule::bench::lecture
