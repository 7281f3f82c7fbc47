// scalar_sum/sacado and scalar_logsumexp/sacado: Sacado's Rad as in lecture_sacado.cpp: each
// evaluation assigns the N inputs to ADvars (new independents in Rad's arena), evaluates f,
// calls Gradcomp() and reads adj().
#include <Sacado_trad.hpp>

#include "bench/scalar_objectives.h"

namespace chainrule::bench::objectives {
namespace {

using ADvar = Sacado::Rad::ADvar<double>;

class SacadoGrad {
 public:
  SacadoGrad(Objective objective, const std::vector<double>& x)
      : objective_(objective), x_(x), a_(x.size()), grad_(x.size()) {}

  double run() {
    for (size_t i = 0; i < a_.size(); ++i) a_[i] = x_[i];
    const ADvar f = evaluate(objective_, a_);
    ADvar::Gradcomp();
    for (size_t i = 0; i < a_.size(); ++i) grad_[i] = a_[i].adj();
    return f.val();
  }
  std::vector<double> gradient() const { return grad_; }

 private:
  Objective objective_;
  std::vector<double> x_;
  std::vector<ADvar> a_;
  std::vector<double> grad_;
};

[[maybe_unused]] const bool registered = add<SacadoGrad>("sacado");

}  // namespace
}  // namespace chainrule::bench::objectives
