// scalar_sum/handwritten and scalar_logsumexp/handwritten: the denominator of the ratio, the
// objective itself on plain doubles (the same template the AD systems instantiate), and for the
// agreement check the closed-form gradients.
#include <cmath>

#include "bench/scalar_objectives.h"

namespace chainrule::bench::objectives {
namespace {

class Function {
 public:
  Function(Objective objective, const std::vector<double>& x) : objective_(objective), x_(x) {}

  double run() { return evaluate(objective_, x_); }

  std::vector<double> gradient() const {
    std::vector<double> g(x_.size(), 1.0);
    if (objective_ == Objective::log_sum_exp) {
      double s = 0.0;
      for (double xi : x_) s += std::exp(xi);
      for (size_t i = 0; i < x_.size(); ++i) g[i] = std::exp(x_[i]) / s;
    }
    return g;
  }

 private:
  Objective objective_;
  std::vector<double> x_;
};

[[maybe_unused]] const bool workloads_registered =
    add_workload({"scalar_sum", "handwritten", kRelTol,
                  "f(x) = sum x_i (ADBench sum_iter), N = 16384; gradient time / plain-double function time"}) &&
    add_workload({"scalar_logsumexp", "handwritten", kRelTol,
                  "f(x) = log sum exp x_i (ADBench log_sum_exp, no max shift), N = 16384; gradient time / "
                  "plain-double function time"});
[[maybe_unused]] const bool registered = add<Function>("handwritten");

}  // namespace
}  // namespace chainrule::bench::objectives
