#pragma once
// Numerical gradient checks that say which op is wrong.
//
// gradcheck(f, inputs) compares the gradient chainrule computes for f with central differences,
//   numeric = (f(x + eps) - f(x - eps)) / (2 eps),
// element by element. An element passes when |analytic - numeric| <= atol + rtol * |numeric|
// (PyTorch's criterion and defaults: eps 1e-6, atol 1e-5, rtol 1e-3, meant for float64). Tensor
// inputs in float32 are checked in float64 copies (the report says so), and their gradient
// computed in float32 is compared with the float64 one, so that float32 code is checked too.
//
// When the check fails, it localises the fault: it re-runs f while recording where every op was
// called (TrackLocationsGuard for Scalars, a replay of each op's forward for Tensors), re-checks
// every recorded op's own derivative against central differences of that op's own forward, and
// names the first op, in recording order, whose backward disagrees, with the file and line where it
// was recorded. Custom ops are re-checked the same way (their forward is known), so a custom op
// with a wrong backward is named even when it is buried in a network:
//
//   auto bad = [](const std::vector<Scalar>& x) {
//     return custom_op("cube", {x[0]}, cube, wrong_d_cube) * x[1];
//   };
//   GradcheckReport r = gradcheck(bad, {1.5, -0.7});
//   r.passed;                          // false
//   r.localisation.faulty->op;         // "cube"
//   std::cout << r;                    // the table of the worst elements, then
//                                      // "localisation: the first op whose backward disagrees
//                                      //  with its own forward is 'cube', recorded at model.cpp:12"
//
// Points where f is not differentiable (relu or abs at 0, or any op whose input sits within eps of
// a kink) are detected and reported as "not differentiable at ...", not as failures: at a kink the
// central difference straddles two slopes and no gradient is wrong. A kink is confirmed, not
// assumed: the one-sided slopes must still differ by the same jump at a tenth of the step (a
// smooth function's gap shrinks with it, however sharply it curves), and every recorded op's own
// derivative must check out (a kink in one input must not excuse another input's error). The
// differences divide by the steps the inputs actually took after rounding.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "autograd/where.h"

namespace chainrule {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step (float64)
  double atol = 1e-5;  // an element passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  // gradcheck_model, when the parameters are float32 (they are changed in place, so they cannot
  // be copied to float64): a step and tolerances that float32 rounding allows. gradcheck of a
  // Tensor function: the tolerances for float32 inputs' float32 gradients against float64's.
  double float32_eps = 1e-3;
  double float32_atol = 1e-3;
  double float32_rtol = 1e-2;
  // 0: check every element. k > 0: check k random unit directions v instead (seeded by `seed`):
  // (f(x + eps v) - f(x - eps v)) / (2 eps) against <gradient, v>, so the cost is 2k evaluations
  // of f whatever the number of elements. Tensor outputs are then projected on a random vector.
  std::size_t directions = 0;
  // Tensor outputs with several elements: false checks every output element (one backward per
  // output element, the full Jacobian); true checks one random projection <r, f(x)> (one backward).
  bool project_outputs = false;
  uint64_t seed = 0;  // random directions and projections
  // On failure, re-check each recorded op to name the faulty one (costs one more forward of f plus
  // a few evaluations of each op's forward per input element).
  bool localise = true;
  // The analytic gradient is computed twice, by two backward passes through the same graph, and
  // every element of the two must agree within this (absolute) tolerance, as PyTorch's gradcheck
  // (`nondet_tol`, whose check that "backward is reentrant" this is): a backward that keeps state,
  // draws random numbers or races gives the gradient the check compared once and others in
  // training. 0: bit for bit (chainrule's own backwards are deterministic).
  double nondet_tol = 0.0;
  std::size_t max_rows = 8;        // rows in the report's table of worst elements
  bool throw_on_failure = false;   // throw GradcheckError (carrying the report) instead
};

// One compared element of the gradient (or directional derivative, or Hessian entry).
struct GradcheckElement {
  std::string input;   // the input's name: a Scalar's label or "x[i]", "input i", a parameter name
  std::string index;   // the element in that input, "[1, 2]" ("" for Scalars); " -> out [k]" added
                       // when a Tensor output has several elements
  double analytic = 0;  // what backward computed
  double numeric = 0;   // the central difference
  double abs_error = 0;  // |analytic - numeric|
  double rel_error = 0;  // abs_error / |numeric| (inf when numeric is 0 and abs_error is not)
  bool passed = true;
  bool at_kink = false;  // disagrees only because the central difference straddles a kink
  // > 0: f's values round by more than the tolerance resolves even over the widest step that still
  // measures a slope (a wider one shows f's curvature), by about this much in the numeric
  // derivative; the comparison allowed it (see notes).
  double rounding = 0;
};

// An element whose two backward passes at the same point gave different gradients (see
// GradcheckOptions::nondet_tol).
struct NondeterministicGradient {
  std::string input;  // as in GradcheckElement
  std::string index;
  double first = 0;   // the first backward's gradient
  double second = 0;  // the second's
};

// An op whose backward gave two different local derivatives for the same inputs and the same
// incoming gradient (see Localisation::nondeterministic).
struct NondeterministicOp {
  std::string op;
  Where where;
  std::size_t operand = 0;  // which of its inputs
  double first = 0;
  double second = 0;
};

// The op the localisation blames: its derivative disagrees with its own forward's finite difference.
struct FaultyOp {
  std::string op;           // "mul", "sigmoid", or the custom op's name
  Where where;              // where it was recorded (file and line)
  std::size_t operand = 0;  // which of its inputs gets the wrong derivative
  std::string index;        // the element of that input ("" for Scalars)
  double analytic = 0;      // the op's backward: d op / d operand (Tensors: projected on a random seed)
  double numeric = 0;       // central difference of the op's own forward
  std::vector<double> at;   // Scalars: the op's input values
  // 1: the op's backward disagrees with its forward. 2 (gradgradcheck, Tensor custom ops): its
  // backward agrees, but that backward's own derivative, which create_graph differentiates, does
  // not (a detach or a plain number inside it); analytic and numeric are then an element of the
  // op's own Hessian-vector product (as gradgradcheck of the op alone).
  int order = 1;
  // gradcheck_model: set when the op reads this parameter without taking it as an input (a capture
  // in its forward): its output moves with the parameter, but no gradient can reach it.
  std::string reads_parameter = {};
};

// An op whose input sits within eps of a point where the op is not differentiable.
struct NonDifferentiablePoint {
  std::string op;
  Where where;
  std::size_t operand = 0;
  std::string index;     // element of that input ("" for Scalars)
  double at = 0;         // the input value
  double left = 0;       // one-sided derivatives (f(x) - f(x - eps)) / eps ...
  double right = 0;      // ... and (f(x + eps) - f(x)) / eps
  double analytic = 0;   // what the backward uses there (a one-sided or a sub-gradient)
};

struct Localisation {
  bool ran = false;                    // only when the check failed (and options.localise)
  std::optional<FaultyOp> faulty;      // the first op, in recording order, whose backward disagrees
  std::size_t ops_checked = 0;         // recorded ops whose derivatives were re-checked
  // Tensor ops that keep no replay of their forward (see detail::ReplayGuard) and so could not be
  // re-checked, as "matmul at tensor_matmul.cpp:110", one entry per op and line.
  std::vector<std::string> not_rechecked;
  // When the backward was not deterministic (GradcheckReport::nondeterministic): the first op, in
  // recording order, whose backward gave two different local derivatives when asked twice (Tensor
  // ops: elements of its backward applied twice to one random upstream gradient).
  std::optional<NondeterministicOp> nondeterministic;
};

// Per parameter, for gradcheck_model.
struct ParameterCheck {
  std::string name;
  std::string shape;               // "[3, 2]"
  std::size_t checked = 0;         // elements (or directions) compared
  std::size_t failures = 0;
  double max_abs_error = 0;
  bool passed = true;
};

struct GradcheckReport {
  std::string what = "gradcheck";  // "gradcheck", "gradgradcheck", "gradcheck_model"
  bool passed = true;
  std::size_t checked = 0;                   // elements (or directions) compared
  std::vector<GradcheckElement> worst;       // the worst elements, worst first (max_rows of them)
  std::vector<GradcheckElement> failures;    // every failing element, worst first
  // Elements that disagree only because an op sits at a kink (see non_differentiable); they do
  // not count as failures.
  std::vector<GradcheckElement> at_kinks;
  std::vector<NonDifferentiablePoint> non_differentiable;
  // Elements whose two backward passes disagreed (beyond options.nondet_tol), largest difference
  // first: the backward is not deterministic, and the check fails whatever the differences say.
  std::vector<NondeterministicGradient> nondeterministic;
  Localisation localisation;
  std::vector<ParameterCheck> parameters;    // gradcheck_model: one entry per parameter
  std::vector<std::string> notes;            // e.g. "input 1 is float32: checked in a float64 copy"
  // Not checked, and why (passed is false): f gave two values at one point (random, stateful,
  // dropout in training mode), so no difference of it means anything. Empty when checked.
  std::string refused;
  double eps = 0, atol = 0, rtol = 0;        // what was used
  double nondet_tol = 0;

  explicit operator bool() const { return passed; }
  // A readable summary: verdict, the table of worst elements (input, index, analytic, numeric,
  // abs err, rel err), the localisation, non-differentiable points and notes.
  std::string to_string() const;
};
std::ostream& operator<<(std::ostream& os, const GradcheckReport& report);

// Thrown by the checks when options.throw_on_failure is set; what() is report.to_string().
class GradcheckError : public std::runtime_error {
 public:
  explicit GradcheckError(GradcheckReport report);
  const GradcheckReport& report() const { return report_; }

 private:
  GradcheckReport report_;
};

// The checks return their verdict ([[nodiscard]]: a check whose report is dropped checks nothing),
// or throw GradcheckError with options.throw_on_failure.
using ScalarFunction = std::function<Scalar(const std::vector<Scalar>&)>;
using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d f / d inputs at `inputs` (their values; leaves are not touched, their .grad stays as it
// is). f receives fresh leaves holding the values, for the analytic gradient and for every finite
// difference, so it must build its result from its argument (and may label its intermediates).
// Inputs are named by their labels, or "x[i]".
//   gradcheck([](const std::vector<Scalar>& x) { return sigmoid(x[0] * x[1]); }, {0.3, -1.2});
[[nodiscard]] GradcheckReport gradcheck(const ScalarFunction& f, const std::vector<Scalar>& inputs,
                          GradcheckOptions options = {});

// Tensors: checks every input that requires grad (others are held constant), every element, and
// every output element (or a random projection: options.project_outputs / directions). float32
// inputs are checked in float64 copies, and f runs once more on them as they are: each float32
// gradient element must agree with the float64 one g within float32_atol * s + float32_rtol * |g|,
// s the largest |g| of that gradient clamped to [1e-6, 1] (float32 rounds relative to it; an
// absolute 1e-3 would pass a wrong sign among gradients of 1e-4) (a row
// "[j] in float32" in the report; when only those fail, the localisation re-checks the float32
// graph's ops). f receives leaves for the analytic passes and tensors that do not require grad
// (under NoGradGuard) for the finite differences.
//   Tensor x = uniform({4, 3}, -1, 1, gen, TensorOptions(DType::float64));  // x [4, 3]: held constant
//   Tensor w = uniform({3, 2}, -1, 1, gen, TensorOptions(DType::float64).requires_grad());
//   gradcheck([](const std::vector<Tensor>& x) { return sigmoid(matmul(x[0], x[1])); }, {x, w});
[[nodiscard]] GradcheckReport gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          GradcheckOptions options = {});

// Second derivatives: checks the gradient of f, itself computed with create_graph, against central
// differences of that gradient. Scalars: every entry of the Hessian. Tensors: the Hessian-vector
// product along a random vector u (seeded), i.e. gradcheck of x -> <u, grad(<r, f(x)>, x)>.
// Scalar custom ops have first-order backwards only: a graph through one throws std::logic_error;
// a Tensor custom op's backward, written with Tensor ops, is differentiated again. float32 inputs
// as in gradcheck: the differences in float64 copies, and the Hessian-vector product computed in
// float32 compared with float64's (rows "[j] in float32").
[[nodiscard]] GradcheckReport gradgradcheck(const ScalarFunction& f, const std::vector<Scalar>& inputs,
                              GradcheckOptions options = {});
[[nodiscard]] GradcheckReport gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                              GradcheckOptions options = {});

// A whole model in one call: checks d loss() / d parameter for every named parameter (as
// nn::Module::named_parameters() returns them) and reports per parameter name. The parameters are
// changed in place for the finite differences and restored exactly; their .grad is not touched.
// float32 parameters are checked with options.float32_eps/atol/rtol (stated in the report).
// With options.directions = k, each parameter is checked along k random directions of its own.
//   auto report = gradcheck_model([&] { return nn::mse_loss(model->forward(x), y); }, model->named_parameters());
[[nodiscard]] GradcheckReport gradcheck_model(const std::function<Tensor()>& loss,
                                const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                                GradcheckOptions options = {});

// A custom op's backward in one call: records custom_op(name, inputs, forward, backward) at the
// given input values and gradchecks it; a wrong backward is named in report.localisation.
//   check_custom_op("cube", cube, d_cube, {1.5});
[[nodiscard]] GradcheckReport check_custom_op(std::string_view name, ScalarForward forward, ScalarBackward backward,
                                const std::vector<double>& inputs, GradcheckOptions options = {},
                                Where where = Where::current());
[[nodiscard]] GradcheckReport check_custom_op(std::string_view name, TensorForward forward, TensorBackward backward,
                                const std::vector<Tensor>& inputs, GradcheckOptions options = {},
                                Where where = Where::current());

}  // namespace chainrule
