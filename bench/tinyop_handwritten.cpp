// tinyop/handwritten: the floor. The chain's values are kept in a preallocated array (the "tape")
// and the reverse sweep is one loop: dz = g * y' (1 - y'), dw += dz * y, db += dz, g = dz * w.
#include <cmath>
#include <vector>

#include "bench/tinyop.h"

namespace chainrule::bench::tinyop {
namespace {

class HandwrittenChain {
 public:
  HandwrittenChain() : y_(kLinks + 1) {}

  double run() {
    y_[0] = kY0;
    for (int k = 0; k < kLinks; ++k) y_[k + 1] = 1.0 / (1.0 + std::exp(-(y_[k] * w_ + b_)));
    double g = 1.0, dw = 0.0, db = 0.0;
    for (int k = kLinks; k > 0; --k) {
      const double dz = g * y_[k] * (1.0 - y_[k]);
      dw += dz * y_[k - 1];
      db += dz;
      g = dz * w_;
    }
    grad_w_ = dw;
    grad_b_ = db;
    return y_[kLinks];
  }
  double grad_w() const { return grad_w_; }
  double grad_b() const { return grad_b_; }

 private:
  std::vector<double> y_;
  double w_ = kW, b_ = kB, grad_w_ = 0, grad_b_ = 0;
};

[[maybe_unused]] const bool workload_registered = add_workload(
    {"tinyop", "handwritten", kRelTol,
     "chain of 1,000 y = sigmoid(y * w + b) on one-element tensors, then backward; time per "
     "recorded op (3,000 ops: mul, add, sigmoid)"});
[[maybe_unused]] const bool registered = add<HandwrittenChain>("handwritten");

}  // namespace
}  // namespace chainrule::bench::tinyop
