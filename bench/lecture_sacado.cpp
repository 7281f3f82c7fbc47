// lecture/sacado: Sacado's Rad (Trilinos, templated reverse mode, Sacado::Rad::ADvar<double>).
// Each epoch assigns the 13 parameters to ADvars (new independents in Rad's arena), evaluates the
// cost neuron by neuron, calls Gradcomp() (which sweeps back from the last value computed: the cost)
// and reads adj(). Rad reuses its arena after each Gradcomp, so this is its intended dynamic use.
#include <Sacado_trad.hpp>

#include "bench/lecture.h"

namespace chainrule::bench::lecture {
namespace {

using ADvar = Sacado::Rad::ADvar<double>;

ADvar sigmoid(const ADvar& z) { return 1.0 / (1.0 + exp(-z)); }

class SacadoNet {
 public:
  SacadoNet() : p_(kInitial.flat()) {}

  double epoch() {
    std::array<ADvar, kParams> a;
    for (int k = 0; k < kParams; ++k) a[k] = p_[k];
    const ADvar cost = epoch_cost<ADvar>(a, [](const ADvar& z) { return sigmoid(z); });
    ADvar::Gradcomp();
    for (int k = 0; k < kParams; ++k) p_[k] -= kLearningRate * a[k].adj();
    return cost.val();
  }

  std::array<double, kParams> params() const { return p_; }

 private:
  std::array<double, kParams> p_;
};

[[maybe_unused]] const bool registered = add<SacadoNet>("sacado");

}  // namespace
}  // namespace chainrule::bench::lecture
