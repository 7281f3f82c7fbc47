// gradcheck for Tensor functions: central differences in float64 over every element (or random
// directions), then, on failure, the op-by-op re-check of gradcheck_localise.cpp. Whole models
// (gradcheck_model) are in gradcheck_model.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "autograd/gradcheck.h"
#include "autograd/gradcheck_detail.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using namespace detail::gradcheck;

namespace {

std::vector<double> random_normal(std::size_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<double> v(n);
  for (double& x : v) x = gen.normal(0, 1);
  return v;
}

// The inputs a Tensor check differentiates: those that require grad, or all when none does.
std::vector<bool> checked_inputs(const std::vector<Tensor>& inputs, const char* what) {
  if (inputs.empty()) throw std::invalid_argument(fmt::format("{}: no inputs given", what));
  std::vector<bool> checked;
  bool any = false;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined()) throw std::invalid_argument(fmt::format("{}: input {} is undefined", what, k));
    checked.push_back(inputs[k].requires_grad());
    any = any || checked.back();
  }
  if (!any) checked.assign(inputs.size(), true);
  return checked;
}

void check_output(const Tensor& y, const Tensor& expected, const char* what) {
  if (!y.defined()) throw std::invalid_argument(fmt::format("{}: the function returned an undefined tensor", what));
  if (expected.defined() && !(y.shape() == expected.shape()))
    throw std::invalid_argument(fmt::format("{}: the function returned shape {} on one call and {} on another",
                                            what, expected.shape().str(), y.shape().str()));
}

// float32 inputs are checked in float64 copies, which tests f's mathematics but not its float32
// code (a kernel's or a custom op's float32 branch). So f also runs on the inputs as they are, and
// each float32 input's gradient is compared with the float64 one (which the differences check),
// within float32's tolerances: one element per gradient element and output projection, named
// "[j] in float32", appended to `elements`. Returns f's float32 graph (recorded with replays, for
// the localisation) and how many of those elements disagree.
struct Float32Pass {
  Tensor y;
  std::size_t failed = 0;
};
Float32Pass compare_float32(const TensorFunction& f, const std::vector<Tensor>& inputs, const std::vector<bool>& checked,
                     const Tensor& y64, const std::vector<std::vector<double>>& seeds, bool per_output,
                     const std::vector<std::vector<std::vector<double>>>& analytic, const GradcheckOptions& options,
                     std::vector<GradcheckElement>& elements, std::vector<bool>& kink) {
  bool any = false;
  for (std::size_t k = 0; k < inputs.size(); ++k) any = any || (checked[k] && inputs[k].dtype() == DType::float32);
  if (!any) return {};
  std::vector<Tensor> leaves, wrt;
  std::vector<std::size_t> wrt_input;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    leaves.push_back(from_vector(inputs[k].to_vector(), inputs[k].shape(), inputs[k].dtype()).set_requires_grad(checked[k]));
    if (checked[k]) {
      wrt.push_back(leaves.back());
      wrt_input.push_back(k);
    }
  }
  Float32Pass pass;
  Tensor& y = pass.y;
  {
    detail::ReplayGuard replay;
    GradModeGuard recording(true);
    y = f(leaves);
  }
  check_output(y, y64, "gradcheck");
  // float32_atol is absolute: against gradients all far below it (a mean over many elements) it
  // would pass a wrong sign. float32's rounding scales with the gradient's own size, so the
  // absolute part is scaled by the largest float64 gradient of the output projection (at most 1;
  // at least 1e-6, so that a float64 zero may round to a few float32 units).
  for (std::size_t s = 0; s < seeds.size(); ++s) {
    double largest = 0;
    for (const std::vector<double>& a : analytic[s])
      for (double v : a) largest = std::max(largest, std::abs(v));
    const Tolerance tol{options.float32_eps, options.float32_atol * std::clamp(largest, 1e-6, 1.0),
                        options.float32_rtol};
    std::vector<Tensor> g(wrt.size());
    if (y.requires_grad())
      g = grad({y}, wrt, {from_vector(seeds[s], y.shape(), y.dtype())}, {.retain_graph = true, .allow_unused = true});
    for (std::size_t w = 0; w < wrt.size(); ++w) {
      const std::size_t k = wrt_input[w];
      if (inputs[k].dtype() != DType::float32) continue;
      const std::vector<double> g32 =
          g[w].defined() ? g[w].to_vector() : std::vector<double>(analytic[s][w].size(), 0.0);
      for (std::size_t j = 0; j < g32.size(); ++j) {
        std::string index = index_string(inputs[k].shape(), static_cast<int64_t>(j)) + " in float32";
        if (per_output) index += " -> out " + index_string(y.shape(), static_cast<int64_t>(s));
        const double a64 = analytic[s][w][j];
        const bool close = tol.close(g32[j], a64);
        pass.failed += close ? 0 : 1;
        elements.push_back(element(fmt::format("input {}", k), std::move(index), g32[j], Differences{a64, a64, a64, 0},
                                   close ? Verdict::agrees : Verdict::disagrees));
        kink.push_back(false);
      }
    }
  }
  return pass;
}

// Checks f at `inputs` (differentiating the `checked` ones) and returns the report.
GradcheckReport check_tensor_function(const TensorFunction& f, const std::vector<Tensor>& inputs,
                                      const std::vector<bool>& checked, std::string what,
                                      const GradcheckOptions& options) {
  const Tolerance tol{options.eps, options.atol, options.rtol};
  GradcheckReport report;
  report.what = std::move(what);
  const std::size_t n = inputs.size();
  std::vector<Tensor> leaves, wrt;
  std::vector<std::size_t> wrt_input;
  for (std::size_t k = 0; k < n; ++k) {
    check_finite_input(report.what.c_str(), fmt::format("input {}", k), inputs[k]);
    if (inputs[k].dtype() == DType::float32)
      report.notes.push_back(fmt::format(
          "input {} is float32: checked in a float64 copy{}", k,
          checked[k] ? "; its gradient computed in float32 is compared with the float64 one (rows 'in float32', "
                       "within float32_rtol, and float32_atol scaled by the gradient's size)"
                     : ""));
    leaves.push_back(float64_copy(inputs[k]).set_requires_grad(checked[k]));
    if (checked[k]) {
      wrt.push_back(leaves.back());
      wrt_input.push_back(k);
    }
  }

  // The analytic pass, recorded with replays so that the same graph serves the localisation.
  Tensor y;
  {
    detail::ReplayGuard replay;
    GradModeGuard recording(true);
    y = f(leaves);
  }
  check_output(y, Tensor(), report.what.c_str());
  const int64_t m = y.numel();
  {
    const std::vector<double> values = y.to_vector();
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (std::isfinite(values[i])) continue;
      const std::string which = m > 1 ? "'s element " + index_string(y.shape(), static_cast<int64_t>(i)) : "";
      refuse_not_finite(report, which, values[i], anomaly_in([&] {
                          GradModeGuard recording(true);
                          (void)f(leaves);
                        }));
      finish(report, options);
      return report;
    }
  }
  const bool per_output = options.directions == 0 && !options.project_outputs && m > 1;
  std::vector<std::vector<double>> seeds;  // one per compared output projection
  if (per_output) {
    for (int64_t o = 0; o < m; ++o) {
      seeds.emplace_back(static_cast<std::size_t>(m), 0.0);
      seeds.back()[static_cast<std::size_t>(o)] = 1.0;
    }
  } else {
    seeds.push_back(m == 1 ? std::vector<double>{1.0} : random_normal(static_cast<std::size_t>(m), options.seed + 7));
    if (m > 1) report.notes.push_back(fmt::format("the {} output elements are projected on a random vector", m));
  }
  // analytic[s][w]: the gradient of <seed s, y> with respect to checked input w. Each is computed
  // twice through the same graph: a backward must give the same gradient every time it runs
  // (GradcheckOptions::nondet_tol).
  std::vector<std::vector<std::vector<double>>> analytic(seeds.size());
  std::vector<NondeterministicGradient> differed;
  for (std::size_t s = 0; s < seeds.size(); ++s) {
    for (std::size_t w = 0; w < wrt.size(); ++w)
      analytic[s].emplace_back(static_cast<std::size_t>(wrt[w].numel()), 0.0);
    if (!y.requires_grad()) continue;
    const Tensor seed = from_vector(seeds[s], y.shape(), y.dtype());
    const std::vector<Tensor> g = grad({y}, wrt, {seed}, {.retain_graph = true, .allow_unused = true});
    const std::vector<Tensor> again = grad({y}, wrt, {seed}, {.retain_graph = true, .allow_unused = true});
    const std::string out = per_output ? " -> out " + index_string(y.shape(), static_cast<int64_t>(s)) : "";
    for (std::size_t w = 0; w < wrt.size(); ++w) {
      analytic[s][w] = g[w].to_vector();
      add_differing(fmt::format("input {}", wrt_input[w]), wrt[w].shape(), out, analytic[s][w], again[w].to_vector(),
                    options.nondet_tol, differed);
    }
  }

  std::vector<GradcheckElement> elements;
  std::vector<bool> kink;
  const Float32Pass float32 = compare_float32(f, inputs, checked, y, seeds, per_output, analytic, options, elements, kink);

  std::vector<Tensor> work;
  std::vector<std::vector<double>> x;
  for (const Tensor& t : inputs) {
    work.push_back(float64_copy(t));
    x.push_back(t.to_vector());
  }
  auto eval = [&] {
    NoGradGuard no_grad;
    const Tensor out = f(work);
    check_output(out, y, report.what.c_str());
    return out.to_vector();
  };
  auto project = [&](std::size_t s, const std::vector<double>& out) {
    return per_output ? out[s] : dot(seeds[s], out);
  };
  const std::vector<double> y0 = eval();
  const std::vector<double> y_first = y.to_vector();
  auto add = [&](std::string input, std::string index, double a, double at, auto&& g) {
    Differences d;
    const Verdict v = judge(a, at, tol, g, d);
    elements.push_back(element(std::move(input), std::move(index), a, d, v));
    kink.push_back(v == Verdict::kink);
  };
  if (options.directions == 0) {
    for (std::size_t w = 0; w < wrt.size(); ++w) {
      const std::size_t k = wrt_input[w];
      for (std::size_t j = 0; j < x[k].size(); ++j) {
        // f at x + t in element j, each step evaluated once for all the output projections.
        std::vector<std::pair<double, std::pair<std::vector<double>, double>>> evaluated;
        auto at_step = [&](double t) -> const std::pair<std::vector<double>, double>& {
          for (const auto& [step, result] : evaluated)
            if (step == t) return result;
          const double taken = set_element(work[k], static_cast<int64_t>(j), x[k][j] + t) - x[k][j];
          std::vector<double> out = eval();
          set_element(work[k], static_cast<int64_t>(j), x[k][j]);
          evaluated.push_back({t, {std::move(out), taken}});
          return evaluated.back().second;
        };
        for (std::size_t s = 0; s < seeds.size(); ++s) {
          std::string index = index_string(inputs[k].shape(), static_cast<int64_t>(j));
          if (per_output) index += " -> out " + index_string(y.shape(), static_cast<int64_t>(s));
          add(fmt::format("input {}", k), std::move(index), analytic[s][w][j], project(s, y0), [&](double t) {
            const auto& [out, taken] = at_step(t);
            return Probe{project(s, out), taken};
          });
        }
      }
    }
  } else {
    std::size_t total = 0;
    for (std::size_t w = 0; w < wrt.size(); ++w) total += x[wrt_input[w]].size();
    const auto dirs = random_directions(options.directions, total, options.seed);
    for (std::size_t d = 0; d < dirs.size(); ++d) {
      auto shift = [&](double t) {
        std::size_t offset = 0;
        for (std::size_t w = 0; w < wrt.size(); ++w) {
          const std::size_t k = wrt_input[w];
          for (std::size_t j = 0; j < x[k].size(); ++j)
            set_element(work[k], static_cast<int64_t>(j), x[k][j] + t * dirs[d][offset + j]);
          offset += x[k].size();
        }
      };
      double a = 0;
      std::size_t offset = 0;
      for (std::size_t w = 0; w < wrt.size(); ++w) {
        for (std::size_t j = 0; j < analytic[0][w].size(); ++j) a += analytic[0][w][j] * dirs[d][offset + j];
        offset += analytic[0][w].size();
      }
      add(fmt::format("direction {}", d), "", a, project(0, y0), [&](double t) {
        shift(t);
        const std::vector<double> out = eval();
        shift(0);
        return Probe{project(0, out), t};
      });
    }
    report.notes.push_back(fmt::format("checked along {} random unit directions (seed {})", options.directions,
                                       options.seed));
  }
  file_elements(report, std::move(elements), kink, tol, options.max_rows);
  file_nondeterministic(report, std::move(differed), options.nondet_tol);
  for (std::size_t i = 0; i < y0.size() && i < y_first.size(); ++i)
    if (refuse_nondeterministic(report, y_first[i], y0[i])) break;

  if (y.requires_grad() && report.refused.empty()) {
    scan_tensor_kinks(y, tol, report);
    if (options.localise && (!report.passed || !report.at_kinks.empty())) {
      // Only float32 gradients disagree: the fault is in float32 code, which the float32 graph's
      // ops run (each re-checked op's backward is its recorded one).
      const bool only_float32 = float32.failed > 0 && report.failures.size() == float32.failed;
      localise_tensor(only_float32 ? float32.y : y, tol, options, report);
      fail_excused_kinks(report);
      // With nothing failing, the re-check only served to name the kinks.
      if (report.passed) report.localisation = Localisation{};
    }
  }
  finish(report, options);
  return report;
}

}  // namespace

GradcheckReport gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, GradcheckOptions options) {
  validate(options, static_cast<bool>(f), "gradcheck");
  return check_tensor_function(f, inputs, checked_inputs(inputs, "gradcheck"), "gradcheck", options);
}

GradcheckReport gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, GradcheckOptions options) {
  validate(options, static_cast<bool>(f), "gradgradcheck");
  const std::vector<bool> checked = checked_inputs(inputs, "gradgradcheck");
  std::vector<Tensor> copies;
  for (const Tensor& t : inputs) copies.push_back(float64_copy(t));
  Tensor y0;
  {
    NoGradGuard no_grad;
    y0 = f(copies);
  }
  check_output(y0, Tensor(), "gradgradcheck");
  // g(x) = <u, grad(<r, f(x)>, x)>: its gradient is the Hessian (of <r, f>) times u.
  const Tensor r = from_vector(random_normal(static_cast<std::size_t>(y0.numel()), options.seed + 11), y0.shape(),
                               y0.dtype());
  std::vector<Tensor> u;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    u.push_back(from_vector(random_normal(static_cast<std::size_t>(inputs[k].numel()), options.seed + 13 + k),
                            inputs[k].shape(), DType::float64));
  // g runs on float64 copies for the differences and, for float32 inputs, once more on the inputs
  // as they are (check_tensor_function's float32 pass): there r, u and the gradients are float32,
  // so that the float32 code of f's backward is differentiated too; s sums in float64.
  TensorFunction g = [&](const std::vector<Tensor>& xs) {
    GradModeGuard recording(true);
    std::vector<Tensor> leaves, wrt, directions;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      leaves.push_back(xs[k].requires_grad() || !checked[k] ? xs[k] : xs[k].detach().set_requires_grad(true));
      if (checked[k]) {
        wrt.push_back(leaves.back());
        directions.push_back(u[k].to(xs[k].dtype()));
      }
    }
    const Tensor y = f(leaves);
    Tensor s = zeros({}, DType::float64);
    if (!y.requires_grad()) return s;
    const std::vector<Tensor> gs = grad({y}, wrt, {r.to(y.dtype())}, {.create_graph = true, .allow_unused = true});
    for (std::size_t w = 0; w < gs.size(); ++w) s = s + sum(gs[w] * directions[w]).to(DType::float64);
    return s;
  };
  std::vector<Tensor> marked;
  for (std::size_t k = 0; k < inputs.size(); ++k) marked.push_back(inputs[k].detach().clone().set_requires_grad(checked[k]));
  GradcheckOptions first_pass = options;
  first_pass.throw_on_failure = false;  // after the second-order localisation below
  GradcheckReport report = check_tensor_function(g, marked, checked, "gradgradcheck", first_pass);
  // Every recorded op's derivative checked out, in the graph of g (f and the ops its backward
  // recorded): a custom op's backward may still be right but not differentiable as written (a
  // detach inside it), which no op of g shows. Each custom op's second derivatives are checked alone.
  if (!report.passed && options.localise && report.refused.empty() && report.nondeterministic.empty() &&
      !report.localisation.faulty) {
    Tensor y;
    {
      detail::ReplayGuard replay;
      GradModeGuard recording(true);
      y = f(marked);  // float32 inputs stay float32: each custom op is checked alone in both
    }
    localise_second_order(y, options, report);
  }
  report.notes.push_back("checks the Hessian-vector product H u of <r, f(x)> for random r and u");
  finish(report, options);
  return report;
}

GradcheckReport check_custom_op(std::string_view name, TensorForward forward, TensorBackward backward,
                                const std::vector<Tensor>& inputs, GradcheckOptions options, Where where) {
  const std::string op(name);
  TensorFunction f = [&](const std::vector<Tensor>& x) { return custom_op(op, x, forward, backward, where); };
  return gradcheck(f, inputs, options);
}

}  // namespace chainrule
