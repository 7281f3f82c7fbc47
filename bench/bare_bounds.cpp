// The two bounds, on the same code as chainrule_scalar: the lecture network neuron by neuron
// (lecture::epoch_cost) and the ADBench objectives' template one element at a time.
//   bare_tape       bench/bare_tape.h: one record per op
//   bare_statement  bench/bare_statement.h: one statement per assignment (expression templates); its
//                   sigmoid takes and returns an expression, so each hidden neuron is one statement
// Parameters and inputs are recorded afresh each evaluation (neither tape keeps anything across a
// rewind), which costs the lecture 13 records and the objectives N.
#include <array>
#include <vector>

#include "bench/bare_statement.h"
#include "bench/bare_tape.h"
#include "bench/lecture.h"
#include "bench/scalar_objectives.h"

namespace chainrule::bench {
namespace {

// A bound's tape, as the systems below use it.
struct BareTape {
  using Var = bare::Var;
  static void rewind() { bare::rewind(); }
  static Var leaf(double v) { return bare::leaf(v); }
  static double grad(const Var& x) { return bare::grad(x); }
  static void backward(const Var& y) { bare::backward(y); }
  static Var sigmoid(const Var& z) { return bare::sigmoid(z); }
};
struct StatementTape {
  using Var = stmt::Var;
  static void rewind() { stmt::rewind(); }
  static Var leaf(double v) { return stmt::leaf(v); }
  static double grad(const Var& x) { return stmt::grad(x); }
  static void backward(const Var& y) { stmt::backward(y); }
  static auto sigmoid(const auto& z) { return stmt::sigmoid(z); }
};

template <class Tape>
class BoundNet {
 public:
  BoundNet() : p_(lecture::kInitial.flat()) {}

  double epoch() {
    using namespace lecture;
    using Var = typename Tape::Var;
    Tape::rewind();
    std::array<Var, kParams> w;
    for (int k = 0; k < kParams; ++k) w[k] = Tape::leaf(p_[k]);
    const Var cost = epoch_cost<Var>(w, [](const auto& z) { return Tape::sigmoid(z); });
    Tape::backward(cost);
    for (int k = 0; k < kParams; ++k) p_[k] -= kLearningRate * Tape::grad(w[k]);
    return cost.v;
  }

  std::array<double, lecture::kParams> params() const { return p_; }

 private:
  std::array<double, lecture::kParams> p_;
};

template <class Tape>
class BoundGrad {
 public:
  BoundGrad(objectives::Objective objective, const std::vector<double>& x)
      : objective_(objective), x_(x), vars_(x.size()), grad_(x.size()) {}

  double run() {
    Tape::rewind();
    for (size_t i = 0; i < x_.size(); ++i) vars_[i] = Tape::leaf(x_[i]);
    const typename Tape::Var f = objectives::evaluate(objective_, vars_);
    Tape::backward(f);
    for (size_t i = 0; i < vars_.size(); ++i) grad_[i] = Tape::grad(vars_[i]);
    return f.v;
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  objectives::Objective objective_;
  std::vector<double> x_;
  std::vector<typename Tape::Var> vars_;
  std::vector<double> grad_;
};

[[maybe_unused]] const bool registered = lecture::add<BoundNet<BareTape>>("bare_tape") &&
                                         lecture::add<BoundNet<StatementTape>>("bare_statement") &&
                                         objectives::add<BoundGrad<BareTape>>("bare_tape") &&
                                         objectives::add<BoundGrad<StatementTape>>("bare_statement");

}  // namespace
}  // namespace chainrule::bench
