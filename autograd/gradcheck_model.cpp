// gradcheck_model: a whole model's loss against central differences, parameter by parameter, on
// the parameters themselves (changed in place and put back exactly), then, on failure, the op-by-op
// re-check of gradcheck_localise.cpp. float32 parameters are checked with float32's step and
// tolerances (GradcheckOptions::float32_*).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "autograd/gradcheck.h"
#include "autograd/gradcheck_detail.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using namespace detail::gradcheck;

GradcheckReport gradcheck_model(const std::function<Tensor()>& loss,
                                const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                                GradcheckOptions options) {
  validate(options, static_cast<bool>(loss), "gradcheck_model");
  GradcheckReport report;
  report.what = "gradcheck_model";
  std::vector<std::string> names;
  std::vector<Tensor> params;
  bool float32 = false;
  for (const auto& [name, p] : named_parameters) {
    if (!p.defined()) throw std::invalid_argument(fmt::format("gradcheck_model: parameter '{}' is undefined", name));
    if (!p.requires_grad() || !p.is_leaf()) {
      report.notes.push_back(fmt::format("parameter '{}' skipped: it is not a leaf that requires grad", name));
      continue;
    }
    check_finite_input("gradcheck_model", fmt::format("parameter '{}'", name), p);
    names.push_back(name);
    params.push_back(p);
    float32 = float32 || p.dtype() == DType::float32;
  }
  if (params.empty()) throw std::invalid_argument("gradcheck_model: no parameter that requires grad was given");
  Tolerance tol32{options.float32_eps, options.float32_atol, options.float32_rtol};
  const Tolerance tol64{options.eps, options.atol, options.rtol};

  std::vector<std::vector<double>> analytic;
  std::vector<NondeterministicGradient> differed;
  double l_first = 0;
  bool loss32 = false;
  {
    Tensor l;
    {
      detail::ReplayGuard replay;
      GradModeGuard recording(true);
      l = loss();
    }
    if (!l.defined() || l.numel() != 1)
      throw std::invalid_argument(fmt::format("gradcheck_model: the loss must have one element, got shape {}",
                                              l.defined() ? l.shape().str() : "undefined"));
    l_first = l.item();
    if (!std::isfinite(l_first)) {
      refuse_not_finite(report, " (the loss)", l_first, anomaly_in([&] {
                          GradModeGuard recording(true);
                          (void)loss();
                        }));
      finish(report, options);
      return report;
    }
    loss32 = l.dtype() == DType::float32;
    if (loss32) tol32.unit = std::numeric_limits<float>::epsilon();  // its values round as float32
    if (l.requires_grad()) {
      for (const Tensor& g : grad({l}, params, {}, {.retain_graph = true, .allow_unused = true}))
        analytic.push_back(g.to_vector());
      // Twice through the same graph: a backward must give the same gradient every time it runs
      // (GradcheckOptions::nondet_tol).
      const std::vector<Tensor> again = grad({l}, params, {}, {.retain_graph = true, .allow_unused = true});
      for (std::size_t k = 0; k < params.size(); ++k)
        add_differing(names[k], params[k].shape(), "", analytic[k], again[k].to_vector(), options.nondet_tol, differed);
      scan_tensor_kinks(l, float32 || loss32 ? tol32 : tol64, report);  // before the parameters change below
    } else {
      for (const Tensor& p : params) analytic.emplace_back(static_cast<std::size_t>(p.numel()), 0.0);
    }
  }

  // Each parameter with the step and tolerances its rounding allows: float32's when it is float32
  // (its steps round coarsely) or the loss is (its values do), float64's otherwise, so that one
  // float32 parameter does not loosen the check of the others.
  const Tolerance tol = float32 || loss32 ? tol32 : tol64;  // the loosest used: reported
  std::vector<std::string> checked32;
  auto uses32 = [&](const Tensor& p) { return p.dtype() == DType::float32 || loss32; };
  for (std::size_t k = 0; k < params.size(); ++k)
    if (uses32(params[k])) checked32.push_back(names[k]);
  if (!checked32.empty())
    report.notes.push_back(fmt::format(
        "float32 parameters{}: {} checked with float32's eps {}, atol {}, rtol {}{}; model->to(DType::float64) "
        "allows the float64 defaults",
        loss32 ? " or loss (the loss is float32)" : "", fmt::join(checked32, ", "), tol32.eps, tol32.atol,
        tol32.rtol, options.localise ? ", and every op re-checked in float64" : ""));

  auto eval = [&] {
    NoGradGuard no_grad;
    return loss().item();
  };
  const double l0 = eval();
  std::vector<GradcheckElement> elements;
  std::vector<bool> kink;
  for (std::size_t k = 0; k < params.size(); ++k) {
    Tensor& p = params[k];
    // Every element back however the checks below end: a loss() that throws leaves p as it was.
    const PutBack put_back(p);
    const std::vector<double>& x = put_back.values();
    ParameterCheck summary;
    summary.name = names[k];
    summary.shape = p.shape().str();
    const Tolerance tol_k = uses32(p) ? tol32 : tol64;
    auto add = [&](std::string index, double a, auto&& g) {
      Differences d;
      const Verdict v = judge(a, l0, tol_k, g, d);
      elements.push_back(element(names[k], std::move(index), a, d, v));
      kink.push_back(v == Verdict::kink);
      const GradcheckElement& e = elements.back();
      ++summary.checked;
      summary.max_abs_error = std::max(summary.max_abs_error, e.abs_error);
      if (!e.passed) ++summary.failures;
    };
    if (options.directions == 0) {
      for (std::size_t j = 0; j < x.size(); ++j) {
        add(index_string(p.shape(), static_cast<int64_t>(j)), analytic[k][j], [&](double t) {
          // The step the parameter took: x + t rounded to its dtype (float32's rounding is coarse).
          const double taken = set_element(p, static_cast<int64_t>(j), x[j] + t) - x[j];
          const double l = eval();
          set_element(p, static_cast<int64_t>(j), x[j]);
          return Probe{l, taken};
        });
      }
    } else {
      const auto dirs = random_directions(options.directions, x.size(), options.seed + k);
      for (std::size_t d = 0; d < dirs.size(); ++d) {
        auto shift = [&](double t) {
          for (std::size_t j = 0; j < x.size(); ++j) set_element(p, static_cast<int64_t>(j), x[j] + t * dirs[d][j]);
        };
        add(fmt::format("direction {}", d), dot(analytic[k], dirs[d]), [&](double t) {
          shift(t);
          const double l = eval();
          shift(0);
          return Probe{l, t};
        });
      }
    }
    summary.passed = summary.failures == 0;
    report.parameters.push_back(summary);
  }
  if (options.directions > 0)
    report.notes.push_back(fmt::format("each parameter checked along {} random unit directions (seed {})",
                                       options.directions, options.seed));
  file_elements(report, std::move(elements), kink, tol, options.max_rows);
  file_nondeterministic(report, std::move(differed), options.nondet_tol);
  refuse_nondeterministic(report, l_first, l0, float32 || loss32 ? 1e-5 : 1e-9);

  // float32's tolerances are loose against small gradients (atol 1e-3 passes a wrong sign on a
  // loss whose gradients are all below it), so a check that used them is not trusted alone: every
  // op is re-checked too (in float64, against its own forward), and an op that disagrees fails
  // the check even when the whole-model comparison passed.
  const bool recheck_ops = !checked32.empty();
  if (options.localise && report.refused.empty() && (!report.passed || !report.at_kinks.empty() || recheck_ops)) {
    const bool whole_passed = report.passed;
    // The numeric pass changed the parameters in place (and restored them), which invalidates the
    // first graph's saved tensors: the localisation records a fresh one.
    Tensor l;
    {
      detail::ReplayGuard replay;
      GradModeGuard recording(true);
      l = loss();
    }
    // The ops are re-checked in float64 copies of their inputs: float64's tolerances (an op that
    // computes in float32 whatever its inputs gets float32's, see localise_tensor).
    if (l.requires_grad()) localise_tensor(l, tol64, options, report);
    // Every op checks out, yet parameters failed: a custom op may read one without taking it as
    // an input.
    if (l.requires_grad() && !report.passed && !report.localisation.faulty && report.nondeterministic.empty()) {
      std::vector<std::pair<std::string, Tensor>> failing;
      for (std::size_t k = 0; k < params.size(); ++k)
        if (!report.parameters[k].passed) failing.emplace_back(names[k], params[k]);
      localise_captured(l, std::move(failing), report);
    }
    fail_excused_kinks(report);
    if (whole_passed && report.localisation.faulty) {
      report.passed = false;
      report.notes.push_back(fmt::format(
          "the whole-model comparison passed within float32's tolerances, but the op re-check found '{}' "
          "disagreeing with its own forward (checked in float64)",
          report.localisation.faulty->op));
    }
    if (report.passed) report.localisation = Localisation{};
  }
  finish(report, options);
  return report;
}

}  // namespace chainrule
