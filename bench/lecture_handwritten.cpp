// lecture/handwritten: the floor. Plain doubles, backpropagation written out by hand as the slides
// do it (error, backprop error per node, summed over the batch), no allocation.
#include <cmath>

#include "bench/lecture.h"

namespace chainrule::bench::lecture {
namespace {

inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

class HandwrittenNet {
 public:
  HandwrittenNet() : p_(kInitial) {}

  double epoch() {
    Params g{};  // summed gradient, zero-initialised
    double cost = 0.0;
    for (int n = 0; n < kObservations; ++n) {
      const auto& x = kX[n];
      double h[kHidden];
      double z_out = p_.b2;
      for (int j = 0; j < kHidden; ++j) {
        h[j] = sigmoid(x[0] * p_.w1[j][0] + x[1] * p_.w1[j][1] + p_.b1[j]);
        z_out += h[j] * p_.w2[j];
      }
      const double yhat = sigmoid(z_out);
      const double error = yhat - kY[n];
      cost += error * error;
      const double bpe_out = error * yhat * (1.0 - yhat);  // backprop error of ON
      g.b2 += bpe_out;
      for (int j = 0; j < kHidden; ++j) {
        g.w2[j] += bpe_out * h[j];
        const double bpe_h = bpe_out * p_.w2[j] * h[j] * (1.0 - h[j]);  // backprop error of H(j+1)
        g.b1[j] += bpe_h;
        g.w1[j][0] += bpe_h * x[0];
        g.w1[j][1] += bpe_h * x[1];
      }
    }
    for (int j = 0; j < kHidden; ++j) {
      p_.w1[j][0] -= kLearningRate * g.w1[j][0];
      p_.w1[j][1] -= kLearningRate * g.w1[j][1];
      p_.b1[j] -= kLearningRate * g.b1[j];
      p_.w2[j] -= kLearningRate * g.w2[j];
    }
    p_.b2 -= kLearningRate * g.b2;
    return 0.5 * cost;
  }

  std::array<double, kParams> params() const { return p_.flat(); }

 private:
  Params p_;
};

[[maybe_unused]] const bool workload_registered = add_workload(
    {"lecture", "handwritten", kRelTol,
     "2-3-1 sigmoid network, slides' weights, 10 observations full batch, 1/2 SSE, SGD lr 0.5; "
     "time per epoch (forward + backward + update)"});
[[maybe_unused]] const bool registered = add<HandwrittenNet>("handwritten");

}  // namespace
}  // namespace chainrule::bench::lecture
