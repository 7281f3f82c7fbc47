// lecture/bare_tape, scalar_sum/bare_tape and scalar_logsumexp/bare_tape: the bound of
// bench/bare_tape.h (one record per op and nothing else), on the same code as chainrule_scalar:
// the lecture network neuron by neuron (lecture::epoch_cost), and the ADBench objectives' template
// one element at a time.
// Parameters and inputs are recorded afresh each evaluation (the bare tape keeps nothing across a
// rewind), which costs the lecture 13 records and the objectives N.
#include <array>
#include <vector>

#include "bench/bare_tape.h"
#include "bench/lecture.h"
#include "bench/scalar_objectives.h"

namespace chainrule::bench {
namespace {

using bare::Var;

class BareNet {
 public:
  BareNet() : p_(lecture::kInitial.flat()) {}

  double epoch() {
    using namespace lecture;
    bare::rewind();
    std::array<Var, kParams> w;
    for (int k = 0; k < kParams; ++k) w[k] = bare::leaf(p_[k]);
    const Var cost = epoch_cost<Var>(w, [](const Var& z) { return bare::sigmoid(z); });
    bare::backward(cost);
    for (int k = 0; k < kParams; ++k) p_[k] -= kLearningRate * bare::grad(w[k]);
    return cost.v;
  }

  std::array<double, lecture::kParams> params() const { return p_; }

 private:
  std::array<double, lecture::kParams> p_;
};

class BareGrad {
 public:
  BareGrad(objectives::Objective objective, const std::vector<double>& x)
      : objective_(objective), x_(x), vars_(x.size()), grad_(x.size()) {}

  double run() {
    bare::rewind();
    for (size_t i = 0; i < x_.size(); ++i) vars_[i] = bare::leaf(x_[i]);
    const Var f = objectives::evaluate(objective_, vars_);
    bare::backward(f);
    for (size_t i = 0; i < vars_.size(); ++i) grad_[i] = bare::grad(vars_[i]);
    return f.v;
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  objectives::Objective objective_;
  std::vector<double> x_;
  std::vector<Var> vars_;
  std::vector<double> grad_;
};

[[maybe_unused]] const bool lecture_registered = lecture::add<BareNet>("bare_tape");
[[maybe_unused]] const bool objectives_registered = objectives::add<BareGrad>("bare_tape");

}  // namespace
}  // namespace chainrule::bench
