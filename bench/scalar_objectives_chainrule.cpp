// scalar_sum/chainrule_scalar and scalar_logsumexp/chainrule_scalar: N leaves made once (a user's
// inputs or parameters); each evaluation sets their values, records f, calls backward(), reads the
// N gradients and clears them with zero_grad().
#include "autograd/scalar.h"
#include "bench/scalar_objectives.h"

namespace chainrule::bench::objectives {
namespace {

class ScalarGrad {
 public:
  ScalarGrad(Objective objective, const std::vector<double>& x) : objective_(objective), x_(x), grad_(x.size()) {
    for (double xi : x) leaves_.push_back(Scalar::leaf(xi));
  }

  double run() {
    for (size_t i = 0; i < leaves_.size(); ++i) leaves_[i].set_value(x_[i]);
    double value;
    {
      const Scalar f = evaluate(objective_, leaves_);
      f.backward();
      value = f.value();
    }  // the graph's handles die here, so the tape is reused by the next evaluation
    for (size_t i = 0; i < leaves_.size(); ++i) {
      grad_[i] = leaves_[i].grad();
      leaves_[i].zero_grad();
    }
    return value;
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  Objective objective_;
  std::vector<double> x_;
  std::vector<Scalar> leaves_;
  std::vector<double> grad_;
};

[[maybe_unused]] const bool registered = add<ScalarGrad>("chainrule_scalar");

}  // namespace
}  // namespace chainrule::bench::objectives
