#pragma once
// Internal to gradcheck (autograd/gradcheck*.cpp): the comparison rule, the classification of a
// disagreement (wrong derivative, or a kink), the table of built-in Scalar forwards, and the Tensor
// localisation. Not part of the public API.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/gradcheck.h"

namespace chainrule::detail::gradcheck {

// The step and the comparison rule of one check.
struct Tolerance {
  double eps, atol, rtol;
  // The relative rounding of the checked function's values: float32's when they are computed in
  // float32 (a float32 loss), so that its noise is seen (see probe_differences).
  double unit = std::numeric_limits<double>::epsilon();
  double bound(double numeric) const;  // atol + rtol * |numeric|
  // |analytic - numeric| <= bound(numeric) + allowance (the rounding a step could not resolve,
  // Differences::rounding); a NaN on either side fails.
  bool close(double analytic, double numeric, double allowance = 0) const;
};

// Central and one-sided differences of a function of one number t around t = 0, for a step eps:
// g(t) = f(x + t * direction).
struct Differences {
  double central = 0, left = 0, right = 0;
  // The rounding of the function's values over the step, when the step could not be widened far
  // enough to bring it below what the comparison resolves (0 otherwise): the comparison then
  // allows it (see probe_differences).
  double rounding = 0;
};
Differences differences(double minus, double at, double plus, double eps);
// The same for the steps actually taken on each side (both > 0): x + eps is rounded, and at
// |x| = 3e10 a step of 1e-6 is lost entirely; dividing by the nominal step then gives nonsense.
Differences differences(double minus, double at, double plus, double step_minus, double step_plus);

// f at a perturbed point, and the perturbation the input actually took (after rounding to its
// dtype; the nominal t for a direction, whose components round separately).
struct Probe {
  double value;
  double step;
};

// How an analytic derivative compares with the differences of the forward it belongs to.
enum class Verdict {
  agrees,     // within tolerance of the central difference
  kink,       // disagrees, but lies between the one-sided derivatives and those differ: the point
              // is (within eps of) a kink, and the analytic value is a valid one-sided/sub-gradient
  disagrees,  // a wrong derivative
};
Verdict classify(double analytic, const Differences& d, const Tolerance& tol);
// Does a kink's jump between the one-sided slopes at step eps (d) persist at a step ten times
// smaller (small)? A kink's does; a smooth function's gap (about eps * f'') shrinks with the step,
// however large it is where f curves sharply (log near 0).
bool gap_persists(const Differences& d, const Differences& small, const Tolerance& tol);

// The differences of g (t -> Probe, g(0) = at) at a step of about `eps`, divided by the steps
// actually taken, and doubled while either
//   - rounding of the input eats more than half of it on either side (at |x| = 3e10, x + 1e-6 is
//     x), or
//   - rounding of g's values, a few units in their last place (tol.unit), divided by the step,
//     exceeds a quarter of what the comparison resolves (tol.bound): at g = 3x, x = 3e10 one unit of
//     g (1.5e-5) over a step of 7.6e-6 reads as a slope of 2 against the true 3.
// Widening for the second rule stops where f's curvature starts to show: g's values may be large
// for reasons that have nothing to do with this input (f = x0^6 + x1^3 at x0 = 1000, checking
// x1), and a step widened until their rounding vanished (to 1e8) measured f's curvature instead of
// its slope (a false failure, and the wrong op blamed). So each widened slope is compared with the
// one before: when it moved by more than their roundings explain, truncation error is growing
// (about 4x per doubling), and the step before is the widest that measures a slope. The element then
// cannot be resolved to the tolerance: the rounding left (and the truncation seen) is returned in
// Differences::rounding, and the comparison allows it (the report says so).
template <class G>
Differences probe_differences(G&& g, double at, double eps, const Tolerance& tol) {
  double h = eps;
  Differences before;            // the last step's, while widening for rounding
  double before_rounding = -1;   // its rounding (< 0: none yet)
  for (int widen = 0;; ++widen) {
    const Probe plus = g(h), minus = g(-h);
    if ((plus.step >= 0.5 * h && -minus.step >= 0.5 * h) || widen == 64) {
      Differences d = differences(minus.value, at, plus.value, -minus.step, plus.step);
      const double magnitude = std::max({std::abs(plus.value), std::abs(minus.value), std::abs(at)});
      const double rounding = 4 * tol.unit * magnitude / (plus.step - minus.step);
      if (before_rounding >= 0 && std::isfinite(d.central) && std::isfinite(before.central)) {
        const double moved = std::abs(d.central - before.central);
        if (moved > 2 * (rounding + before_rounding) + 0.25 * tol.bound(before.central)) {
          before.rounding = before_rounding + moved / 3;  // its own truncation: about a third of the move
          return before;
        }
      }
      if (!(rounding > 0.25 * tol.bound(d.central)) || widen == 64) return d;  // NaN and inf: as they are
      before = d;
      before_rounding = rounding;
    }
    h *= 2;
  }
}

// The verdict on `analytic` for g, with the differences it rests on in `d`. A value between the
// one-sided slopes at eps is looked at again at a tenth of the step: it agrees there (a point
// within eps of a kink, or a smooth function curving sharply, log near 0), or the slopes still
// differ by the same jump (a kink), or it is wrong (their gap shrank: f is smooth there).
template <class G>
Verdict judge(double analytic, double at, const Tolerance& tol, G&& g, Differences& d) {
  d = probe_differences(g, at, tol.eps, tol);
  const Verdict v = classify(analytic, d, tol);
  if (v != Verdict::kink) return v;
  const Differences small = probe_differences(g, at, tol.eps / 10, tol);
  if (tol.close(analytic, small.central, small.rounding)) {
    d = small;
    return Verdict::agrees;
  }
  return gap_persists(d, small, tol) ? Verdict::kink : Verdict::disagrees;
}

// A compared element, with the verdict (from judge) folded into `passed` (kinks pass; the caller
// files them).
GradcheckElement element(std::string input, std::string index, double analytic, const Differences& d,
                         Verdict verdict);

// Files elements into report.worst / failures / at_kinks, sets checked and passed, and the
// tolerances used. Kink elements are those whose verdict was Verdict::kink.
void file_elements(GradcheckReport& report, std::vector<GradcheckElement> elements,
                   const std::vector<bool>& kink, const Tolerance& tol, std::size_t max_rows);

// After a localisation that found an op whose own derivative disagrees, while the whole check
// passed only because some elements sat at a kink: those elements fail. A kink widens the interval
// a derivative may fall in, enough to hide another input's wrong derivative in a direction or a
// sum, so a kink excuses a disagreement only when every op checks out.
void fail_excused_kinks(GradcheckReport& report);

// Do two backward passes' gradients for one element differ beyond nondet_tol (see
// GradcheckOptions::nondet_tol)? NaN in both is the same; NaN in one only differs.
bool backwards_differ(double first, double second, double nondet_tol);
// Files the elements whose two backward passes differed (largest difference first) and fails the
// report when there are any; records nondet_tol in the report. After file_elements.
void file_nondeterministic(GradcheckReport& report, std::vector<NondeterministicGradient> found, double nondet_tol);
// Appends to `out` every element j of one tensor input whose gradients from two backward passes
// differ, named `input` and index_string(shape, j) + `suffix`.
void add_differing(const std::string& input, const Shape& shape, const std::string& suffix,
                   const std::vector<double>& first, const std::vector<double>& second, double nondet_tol,
                   std::vector<NondeterministicGradient>& out);

// When f gave two different values at the same point (the analytic pass and the first numeric
// one): it is random or keeps state (dropout in training mode), so no difference of it means
// anything. Refuses the report (GradcheckReport::refused, with the reason; the compared elements,
// kinks and per-parameter counts are dropped, and the callers skip the kink scan and the
// localisation); returns whether it did. `rel`: how far apart
// two evaluations may be from rounding alone (the recorded and the unrecorded pass may take
// different kernels).
bool refuse_nondeterministic(GradcheckReport& report, double first, double second, double rel = 1e-9);

// Throws std::invalid_argument naming the check, the input (or element) and its value when the
// value is NaN or infinite: there is no gradient to check at such a point.
void check_finite_input(const char* what, std::string_view input, double value);
// The same for every element of `t`, named "<input> element [i, j]".
void check_finite_input(const char* what, std::string_view input, const Tensor& t);
// Runs `evaluate` (f at the checked point) under DetectAnomalyGuard: the message of the first NaN
// or infinity it meets, naming the op and its line, or "" when none shows.
std::string anomaly_in(const std::function<void()>& evaluate);
// When f is not finite at the checked point (log of a negative number): refuses the report, with
// the output element ("" for one), the value and what anomaly_in found.
void refuse_not_finite(GradcheckReport& report, std::string_view output, double value, const std::string& anomaly);

// Throws std::invalid_argument naming `what` and the option when an option cannot work (a step
// that is not finite and > 0, a negative or non-finite tolerance, more random directions than
// 2^20), or when the function to check is empty.
void validate(const GradcheckOptions& options, bool function_set, const char* what);

// Adds a non-differentiable point unless the same op, place, operand and index is already listed.
void add_kink(GradcheckReport& report, NonDifferentiablePoint point);

// Throws GradcheckError when asked to and the report failed.
void finish(GradcheckReport& report, const GradcheckOptions& options);

// The forward of a built-in elementwise op by name ("mul", "sigmoid", ...), from autograd/ops.h;
// an empty function for an unknown name. Covers every name in ops::elementwise_ops.
std::function<double(std::span<const double>)> builtin_forward(std::string_view name);

// Tensor checks compute in float64 copies of their inputs, which a perturbation may change without
// touching the caller's tensors (or a node's saved inputs).
Tensor float64_copy(const Tensor& t);
// sum_i a[i] * b[i] over the shorter of the two: a projection on a random vector or direction.
double dot(const std::vector<double>& a, const std::vector<double>& b);
// Sets element j of t to v rounded to t's dtype, and returns what it holds now (the step an input
// actually took is that minus its old value).
double set_element(Tensor& t, int64_t j, double v);

// Puts every element of a tensor (a parameter changed in place) back as it was when made, exactly
// (float32 -> double -> float32 is exact), however the scope ends.
class PutBack {
 public:
  explicit PutBack(Tensor& t) : t_(t), values_(t.to_vector()) {}
  ~PutBack() {
    for (std::size_t j = 0; j < values_.size(); ++j) set_element(t_, static_cast<int64_t>(j), values_[j]);
  }
  PutBack(const PutBack&) = delete;
  PutBack& operator=(const PutBack&) = delete;
  const std::vector<double>& values() const { return values_; }

 private:
  Tensor& t_;
  const std::vector<double> values_;
};

// "[1, 2]" for flat element `flat` of a row-major tensor of shape `shape` ("[]" for 0-d).
std::string index_string(const Shape& shape, int64_t flat);

// Unit directions for the random-direction checks: `count` vectors of `size` numbers, normally
// distributed then normalised, reproducible from `seed`.
std::vector<std::vector<double>> random_directions(std::size_t count, std::size_t size, uint64_t seed);

// Re-checks every op recorded below `root` (which must have been recorded under ReplayGuard and not
// swept without retain_graph) in recording order: fills report.localisation (the first op whose
// backward disagrees, the ops that could not be re-checked) and report.non_differentiable.
void localise_tensor(const Tensor& root, const Tolerance& tol, const GradcheckOptions& options,
                     GradcheckReport& report);

// gradgradcheck's localisation when every op's first derivative checks out: re-checks the second
// derivatives of each custom op below `root` (recorded under ReplayGuard) alone, gradgradcheck of
// the op at its recorded inputs, and files the first that fails as Localisation::faulty (order 2).
void localise_second_order(const Tensor& root, const GradcheckOptions& options, GradcheckReport& report);

// gradcheck_model's localisation when every op's derivative checks out but parameters failed:
// finds the first custom op below `root` (recorded under ReplayGuard) whose replayed output moves
// when one of those parameters does, though the parameter is not among its inputs (its forward
// captures it), and files it as Localisation::faulty (FaultyOp::reads_parameter). The parameters
// are changed in place and put back exactly.
void localise_captured(const Tensor& root, std::vector<std::pair<std::string, Tensor>> failing,
                       GradcheckReport& report);

// Lists relu and abs ops below `root` (recorded under ReplayGuard) whose input has elements within
// eps of 0: a cheap scan run on every Tensor check, so that a kink is reported even when the
// numbers happen to agree (abs at 0: the central difference and the sub-gradient are both 0).
void scan_tensor_kinks(const Tensor& root, const Tolerance& tol, GradcheckReport& report);

}  // namespace chainrule::detail::gradcheck
