// scalar_sum/adolc and scalar_logsumexp/adolc: ADOL-C as in lecture_adolc.cpp, re-recording its
// tape at every evaluation (trace_on ... trace_off), then gradient(), which replays the tape forward
// and sweeps it in reverse.
#include <adolc/adolc.h>

#include "bench/scalar_objectives.h"

namespace chainrule::bench::objectives {
namespace {

constexpr short kTape = 2;

class AdolcGrad {
 public:
  AdolcGrad(Objective objective, const std::vector<double>& x) : objective_(objective), x_(x), grad_(x.size()) {}

  double run() {
    double value;
    trace_on(kTape);
    {
      std::vector<adouble> a(x_.size());
      for (size_t i = 0; i < a.size(); ++i) a[i] <<= x_[i];
      adouble f = evaluate(objective_, a);
      f >>= value;
    }
    trace_off();
    ::gradient(kTape, static_cast<int>(x_.size()), x_.data(), grad_.data());
    return value;
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  Objective objective_;
  std::vector<double> x_;
  std::vector<double> grad_;
};

// Checked in a child process: 16,384 adoubles alive at once would otherwise grow ADOL-C's location
// store for the rest of the process, and lecture/adolc, timed later, would pay for it (27 us per
// epoch became 110-160 us).
[[maybe_unused]] const bool registered = add<AdolcGrad>("adolc", /*check_in_child=*/true);

}  // namespace
}  // namespace chainrule::bench::objectives
