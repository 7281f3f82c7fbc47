// gradcheck for Scalar functions: whole-function central differences, then every recorded op's
// local derivative against its own forward (graph_view gives the recorded ops in creation order).
#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "autograd/gradcheck.h"
#include "autograd/anomaly.h"
#include "autograd/gradcheck_detail.h"

namespace chainrule {

using namespace detail::gradcheck;

namespace {

// What one scalar-valued function's check gathers; gradgradcheck merges several.
struct Collected {
  std::vector<GradcheckElement> elements;
  std::vector<bool> kink;
  std::optional<FaultyOp> faulty;  // from the first function whose check failed
  std::size_t ops_checked = 0;
  std::vector<std::string> not_rechecked;
  std::vector<NonDifferentiablePoint> kinks;
  std::vector<std::pair<double, double>> nondeterministic;  // (first, second) value at one point
  std::vector<NondeterministicGradient> backwards_differ;     // two backward passes disagreed
  std::optional<NondeterministicOp> nondeterministic_op;
  // The function was not finite at the point: (which, value, what anomaly mode said).
  std::optional<std::tuple<std::string, double, std::string>> not_finite;
};

// Element names: (input, index) of element i, or of direction i.
using Namer = std::function<std::pair<std::string, std::string>(std::size_t)>;

std::vector<std::string> input_names(const std::vector<Scalar>& inputs) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::string label = inputs[i].label();
    names.push_back(label.empty() ? fmt::format("x[{}]", i) : std::move(label));
  }
  return names;
}

// Re-checks each op of the recorded graph `view` against its forward. Kinks are always collected
// (an op within eps of a kink is worth a line even when the numbers agree: abs at 0); the first
// disagreeing op is returned.
std::optional<FaultyOp> recheck_ops(const std::vector<ScalarNodeView>& view, const Tolerance& tol, Collected& out) {
  std::optional<FaultyOp> faulty;
  for (const ScalarNodeView& node : view) {
    if (node.is_leaf || node.is_constant) continue;
    auto forward = node.forward ? node.forward : builtin_forward(node.op);
    if (!forward) {
      out.not_rechecked.push_back(fmt::format("{} at {}", node.op, to_string(node.where)));
      continue;
    }
    ++out.ops_checked;
    std::vector<double> at;
    for (std::size_t j : node.inputs) at.push_back(view[j].value);
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      if (view[node.inputs[k]].is_constant) continue;  // no gradient flows there
      auto g = [&](double t) {
        std::vector<double> x = at;
        x[k] += t;
        return Probe{forward(x), x[k] - at[k]};
      };
      const double f0 = forward(at);
      const double analytic = k < node.local.size() ? node.local[k] : 0.0;
      Differences d;
      const Verdict v = judge(analytic, f0, tol, g, d);
      bool kink = v == Verdict::kink;
      if (v == Verdict::agrees) {
        // A kink can hide when the sub-gradient equals the central difference (abs at 0): the
        // one-sided slopes then differ by the same jump at eps and at eps / 10, where a smooth
        // function's differ ten times less.
        // (judge may have agreed at a tenth of the step: compare the gaps at eps and eps / 10.)
        kink = gap_persists(probe_differences(g, f0, tol.eps, tol), probe_differences(g, f0, tol.eps / 10, tol), tol);
      }
      if (kink) out.kinks.push_back({node.op, node.where, k, "", at[k], d.left, d.right, analytic});
      // No finite difference (the op's forward is not finite within the step: the edge of its
      // domain) is no evidence against its backward.
      if (v == Verdict::disagrees && std::isfinite(d.central) && !faulty)
        faulty = FaultyOp{node.op, node.where, k, "", analytic, d.central, at};
    }
  }
  return faulty;
}

// The first op whose local derivatives differ between two views of one graph (each view asks
// every custom op's backward anew; built-in rules are deterministic).
std::optional<NondeterministicOp> nondeterministic_op(const std::vector<ScalarNodeView>& first,
                                                      const std::vector<ScalarNodeView>& second, double nondet_tol) {
  for (std::size_t j = 0; j < first.size() && j < second.size(); ++j) {
    const ScalarNodeView& a = first[j];
    const ScalarNodeView& b = second[j];
    for (std::size_t k = 0; k < a.local.size() && k < b.local.size(); ++k)
      if (backwards_differ(a.local[k], b.local[k], nondet_tol))
        return NondeterministicOp{a.op, a.where, k, a.local[k], b.local[k]};
  }
  return std::nullopt;
}

// Checks one scalar-valued function of `values` and appends what it finds to `out`.
// `which`: the function's name in a refusal ("" for f itself).
void check_function(const ScalarFunction& f, const std::vector<Scalar>& inputs, const Namer& name,
                    const std::string& which, const Tolerance& tol, const GradcheckOptions& options, Collected& out) {
  const std::size_t n = inputs.size();
  std::vector<double> x(n);
  std::vector<Scalar> leaves;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = inputs[i].value();
    leaves.push_back(Scalar::leaf(x[i]));
    if (std::string label = inputs[i].label(); !label.empty()) leaves.back().set_label(std::move(label));
  }

  // The analytic pass, recorded with locations so that the same graph serves the op re-check.
  Scalar y;
  {
    TrackLocationsGuard track;
    GradModeGuard recording(true);
    y = f(leaves);
  }
  if (!std::isfinite(y.value())) {
    if (!out.not_finite) out.not_finite = {which, y.value(), anomaly_in([&] { (void)f(leaves); })};
    return;
  }
  // Twice through the same graph: a backward must give the same gradient every time it runs
  // (GradcheckOptions::nondet_tol).
  std::vector<double> analytic(n, 0.0), again(n, 0.0);
  if (y.requires_grad()) {
    for (std::vector<double>* into : {&analytic, &again}) {
      const std::vector<Scalar> g = grad({y}, leaves, {}, {.retain_graph = true, .allow_unused = true});
      for (std::size_t i = 0; i < n; ++i) (*into)[i] = g[i].value();
    }
  }
  const std::size_t differed = out.backwards_differ.size();
  auto compare_backwards = [&](std::size_t i, double first, double second) {
    if (!backwards_differ(first, second, options.nondet_tol)) return;
    auto [input, index] = name(i);
    out.backwards_differ.push_back({std::move(input), std::move(index), first, second});
  };

  // Leaves rather than constants, recorded: model code often labels its intermediates
  // (set_label), which a constant cannot carry. Each graph is released on return.
  auto eval = [&](const std::vector<double>& at) {
    GradModeGuard recording(true);
    std::vector<Scalar> xs;
    for (double v : at) xs.push_back(Scalar::leaf(v));
    return f(xs).value();
  };
  const double f0 = eval(x);
  if (y.value() != f0) out.nondeterministic.push_back({y.value(), f0});
  const std::size_t before = out.elements.size();
  auto add = [&](std::size_t i, double a, auto&& g) {
    Differences d;
    const Verdict v = judge(a, f0, tol, g, d);
    auto [input, index] = name(i);
    out.elements.push_back(element(std::move(input), std::move(index), a, d, v));
    out.kink.push_back(v == Verdict::kink);
  };
  if (options.directions == 0) {
    for (std::size_t i = 0; i < n; ++i) {
      compare_backwards(i, analytic[i], again[i]);
      add(i, analytic[i], [&](double t) {
        std::vector<double> xt = x;
        xt[i] += t;
        return Probe{eval(xt), xt[i] - x[i]};
      });
    }
  } else {
    const auto dirs = random_directions(options.directions, n, options.seed);
    for (std::size_t k = 0; k < dirs.size(); ++k) {
      double a = 0, a_again = 0;
      for (std::size_t i = 0; i < n; ++i) {
        a += analytic[i] * dirs[k][i];
        a_again += again[i] * dirs[k][i];
      }
      compare_backwards(k, a, a_again);
      add(k, a, [&](double t) {
        std::vector<double> xt = x;
        for (std::size_t i = 0; i < n; ++i) xt[i] += t * dirs[k][i];
        return Probe{eval(xt), t};
      });
    }
  }

  bool failed = false, kinks = false;
  for (std::size_t i = before; i < out.elements.size(); ++i) {
    failed = failed || !out.elements[i].passed;
    kinks = kinks || out.kink[i];
  }
  const std::vector<ScalarNodeView> view = graph_view(y);
  std::optional<FaultyOp> faulty = recheck_ops(view, tol, out);
  if (out.backwards_differ.size() > differed && !out.nondeterministic_op)
    out.nondeterministic_op = nondeterministic_op(view, graph_view(y), options.nondet_tol);
  // A kink excuses a disagreement only when every op's own derivative checks out: in a direction,
  // or in a sum, a kink in one input widens the interval enough to hide another input's wrong
  // derivative. An op that disagrees makes the excused elements failures.
  if (kinks && faulty) {
    for (std::size_t i = before; i < out.elements.size(); ++i) {
      if (!out.kink[i]) continue;
      out.kink[i] = false;
      out.elements[i].passed = false;
      out.elements[i].at_kink = false;
    }
    failed = true;
  }
  if (failed && !out.faulty) out.faulty = std::move(faulty);
}

GradcheckReport assemble(std::string what, Collected c, const Tolerance& tol, const GradcheckOptions& options) {
  GradcheckReport report;
  report.what = std::move(what);
  file_elements(report, std::move(c.elements), c.kink, tol, options.max_rows);
  file_nondeterministic(report, std::move(c.backwards_differ), options.nondet_tol);
  for (NonDifferentiablePoint& p : c.kinks) add_kink(report, std::move(p));
  for (const auto& [first, second] : c.nondeterministic)
    if (refuse_nondeterministic(report, first, second)) break;
  if (c.not_finite) {
    const auto& [which, value, anomaly] = *c.not_finite;
    refuse_not_finite(report, which, value, anomaly);
  }
  if (!report.passed && options.localise && report.refused.empty()) {
    report.localisation.ran = true;
    report.localisation.faulty = std::move(c.faulty);
    report.localisation.ops_checked = c.ops_checked;
    report.localisation.not_rechecked = std::move(c.not_rechecked);
    report.localisation.nondeterministic = std::move(c.nondeterministic_op);
  }
  if (options.directions > 0)
    report.notes.push_back(fmt::format("checked along {} random unit directions (seed {})", options.directions,
                                       options.seed));
  finish(report, options);
  return report;
}

Tolerance tolerance(const GradcheckOptions& o) { return {o.eps, o.atol, o.rtol}; }

}  // namespace

GradcheckReport gradcheck(const ScalarFunction& f, const std::vector<Scalar>& inputs, GradcheckOptions options) {
  validate(options, static_cast<bool>(f), "gradcheck");
  // As the Tensor checks: a check of nothing would pass and say so.
  if (inputs.empty()) throw std::invalid_argument("gradcheck: no inputs given");
  const Tolerance tol = tolerance(options);
  const std::vector<std::string> names = input_names(inputs);
  for (std::size_t i = 0; i < inputs.size(); ++i) check_finite_input("gradcheck", names[i], inputs[i].value());
  Collected c;
  check_function(f, inputs,
                 [&](std::size_t i) -> std::pair<std::string, std::string> {
                   if (options.directions > 0) return {fmt::format("direction {}", i), ""};
                   return {names[i], ""};
                 },
                 "", tol, options, c);
  return assemble("gradcheck", std::move(c), tol, options);
}

GradcheckReport gradgradcheck(const ScalarFunction& f, const std::vector<Scalar>& inputs, GradcheckOptions options) {
  validate(options, static_cast<bool>(f), "gradgradcheck");
  // As the Tensor checks: a check of nothing would pass and say so.
  if (inputs.empty()) throw std::invalid_argument("gradgradcheck: no inputs given");
  const Tolerance tol = tolerance(options);
  const std::vector<std::string> names = input_names(inputs);
  for (std::size_t i = 0; i < inputs.size(); ++i) check_finite_input("gradgradcheck", names[i], inputs[i].value());
  Collected c;
  // Row j of the Hessian is the gradient of x -> df/dx_j, itself computed with create_graph.
  for (std::size_t j = 0; j < inputs.size(); ++j) {
    ScalarFunction df = [&f, j](const std::vector<Scalar>& xs) {
      GradModeGuard recording(true);
      std::vector<Scalar> leaves;
      for (const Scalar& x : xs) leaves.push_back(x.is_leaf() && x.requires_grad() ? x : Scalar::leaf(x.value()));
      const Scalar y = f(leaves);
      if (!y.requires_grad()) return Scalar(0.0);
      return grad({y}, leaves, {}, {.create_graph = true, .allow_unused = true})[j];
    };
    check_function(df, inputs,
                   [&](std::size_t i) -> std::pair<std::string, std::string> {
                     if (options.directions > 0) return {"df/d" + names[j], fmt::format("direction {}", i)};
                     return {"df/d" + names[j], "d/d" + names[i]};
                   },
                   "'s derivative df/d" + names[j], tol, options, c);
  }
  return assemble("gradgradcheck", std::move(c), tol, options);
}

GradcheckReport check_custom_op(std::string_view name, ScalarForward forward, ScalarBackward backward,
                                const std::vector<double>& inputs, GradcheckOptions options, Where where) {
  const std::string op(name);
  ScalarFunction f = [&](const std::vector<Scalar>& x) { return custom_op(op, x, forward, backward, where); };
  return gradcheck(f, std::vector<Scalar>(inputs.begin(), inputs.end()), options);
}

}  // namespace chainrule
