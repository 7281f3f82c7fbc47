// lecture/adolc: ADOL-C with its tape re-recorded every epoch (trace_on ... trace_off), as a
// dynamic graph must be, then gradient(), which replays the tape forward (zos_forward) and sweeps
// it in reverse (fos_reverse). The forward's cost is read from the recorded dependent.
#include <adolc/adolc.h>

#include "bench/lecture.h"

namespace chainrule::bench::lecture {
namespace {

constexpr short kTape = 1;

adouble sigmoid(const adouble& z) { return 1.0 / (1.0 + exp(-z)); }

class AdolcNet {
 public:
  AdolcNet() : p_(kInitial.flat()) {}

  double epoch() {
    double cost_value;
    trace_on(kTape);
    {
      std::array<adouble, kParams> a;
      for (int k = 0; k < kParams; ++k) a[k] <<= p_[k];
      adouble cost = epoch_cost<adouble>(a, [](const adouble& z) { return sigmoid(z); });
      cost >>= cost_value;
    }
    trace_off();
    std::array<double, kParams> g;
    gradient(kTape, kParams, p_.data(), g.data());
    for (int k = 0; k < kParams; ++k) p_[k] -= kLearningRate * g[k];
    return cost_value;
  }

  std::array<double, kParams> params() const { return p_; }

 private:
  std::array<double, kParams> p_;
};

[[maybe_unused]] const bool registered = add<AdolcNet>("adolc");

}  // namespace
}  // namespace chainrule::bench::lecture
