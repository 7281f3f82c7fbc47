// scalar_sum and scalar_logsumexp for chainrule, two ways:
//   chainrule_scalar: N Scalar leaves made once (a user's inputs or parameters); each evaluation sets
//     their values, records f one element at a time (the template in scalar_objectives.h: one
//     recorded op per element, as Sacado and ADOL-C run it), calls backward(), reads the N
//     gradients and clears them with zero_grad().
//   chainrule_tensor: the N inputs as one float64 Tensor leaf; each evaluation writes the values
//     into it, records f as whole-tensor ops (sum(x); log(sum(exp(x))), the formula of ADBench's
//     LogSumExpFuncBase), calls backward(), copies the N partials out and drops the gradient. This
//     is the shape of FastAD's and Stan's entries in ADBench, whose published ratios come from one
//     node per reduction over a vector variable (FastAD's VarView<vec>, Stan's sum(x) and varmat).
#include <algorithm>

#include "autograd/scalar.h"
#include "autograd/tensor.h"
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

class TensorGrad {
 public:
  TensorGrad(Objective objective, const std::vector<double>& x)
      : objective_(objective),
        x_(x),
        leaf_(from_vector(x, {static_cast<int64_t>(x.size())}, TensorOptions(DType::float64).requires_grad(true))),
        grad_(x.size()) {}

  double run() {
    std::copy(x_.begin(), x_.end(), leaf_.mutable_data<double>());
    double value;
    {
      const Tensor f = objective_ == Objective::sum_iter ? sum(leaf_) : log(sum(exp(leaf_)));
      f.backward();
      value = f.item();
    }
    const double* g = leaf_.grad().data<double>();
    std::copy(g, g + grad_.size(), grad_.begin());
    leaf_.zero_grad();
    return value;
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  Objective objective_;
  std::vector<double> x_;
  Tensor leaf_;
  std::vector<double> grad_;
};

[[maybe_unused]] const bool scalar_registered = add<ScalarGrad>("chainrule_scalar");
[[maybe_unused]] const bool tensor_registered = add<TensorGrad>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::objectives
