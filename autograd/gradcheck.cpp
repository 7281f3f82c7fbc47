// gradcheck's shared pieces: the comparison rule, the kink rule, filing elements into the report,
// refusals, option checks and small helpers. The report's text is in gradcheck_report.cpp.
#include "autograd/gradcheck.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/anomaly.h"
#include "autograd/gradcheck_detail.h"
#include "autograd/ops.h"
#include "autograd/tensor_loops.h"

namespace chainrule {

namespace detail::gradcheck {

double Tolerance::bound(double numeric) const { return atol + rtol * std::abs(numeric); }

bool Tolerance::close(double analytic, double numeric, double allowance) const {
  // Written so that a NaN on either side fails.
  return std::abs(analytic - numeric) <= bound(numeric) + allowance;
}

Differences differences(double minus, double at, double plus, double eps) {
  return {(plus - minus) / (2 * eps), (at - minus) / eps, (plus - at) / eps};
}

Differences differences(double minus, double at, double plus, double step_minus, double step_plus) {
  return {(plus - minus) / (step_minus + step_plus), (at - minus) / step_minus, (plus - at) / step_plus};
}

bool gap_persists(const Differences& d, const Differences& small, const Tolerance& tol) {
  const double gap = std::abs(d.right - d.left), small_gap = std::abs(small.right - small.left);
  return gap > tol.bound(std::max(std::abs(d.left), std::abs(d.right))) && small_gap > 0.5 * gap;
}

Verdict classify(double analytic, const Differences& d, const Tolerance& tol) {
  if (tol.close(analytic, d.central, d.rounding)) return Verdict::agrees;
  // At a kink the two one-sided slopes differ by a finite jump (for a smooth function they differ
  // by about eps * f'', far below the tolerance), and a correct backward returns one of them or a
  // value in between (relu'(0) = 0, abs'(0) = 0): that is not a wrong derivative.
  const double slack = tol.bound(std::max(std::abs(d.left), std::abs(d.right)));
  const double lo = std::min(d.left, d.right), hi = std::max(d.left, d.right);
  if (hi - lo > slack && analytic >= lo - slack && analytic <= hi + slack) return Verdict::kink;
  return Verdict::disagrees;
}

GradcheckElement element(std::string input, std::string index, double analytic, const Differences& d,
                         Verdict verdict) {
  GradcheckElement e;
  e.input = std::move(input);
  e.index = std::move(index);
  e.analytic = analytic;
  e.numeric = d.central;
  e.abs_error = std::abs(analytic - d.central);
  if (std::isnan(e.abs_error)) e.abs_error = std::numeric_limits<double>::infinity();
  e.rel_error = d.central != 0 ? e.abs_error / std::abs(d.central)
                               : (e.abs_error == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  e.passed = verdict != Verdict::disagrees;
  e.rounding = d.rounding;
  return e;
}

void file_elements(GradcheckReport& report, std::vector<GradcheckElement> elements,
                   const std::vector<bool>& kink, const Tolerance& tol, std::size_t max_rows) {
  std::vector<std::size_t> order(elements.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto badness = [&](std::size_t i) { return elements[i].abs_error - tol.bound(elements[i].numeric); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return badness(a) > badness(b); });
  report.checked += elements.size();
  for (std::size_t i = 0; i < elements.size(); ++i) elements[i].at_kink = kink[i];
  for (std::size_t i : order) {
    if (kink[i]) report.at_kinks.push_back(elements[i]);
    else if (!elements[i].passed) report.failures.push_back(elements[i]);
  }
  for (std::size_t k = 0; k < order.size() && report.worst.size() < max_rows; ++k)
    report.worst.push_back(elements[order[k]]);
  report.passed = report.failures.empty();
  std::size_t unresolved = 0;
  double largest = 0;
  for (const GradcheckElement& e : elements)
    if (e.rounding > 0) {
      ++unresolved;
      largest = std::max(largest, e.rounding);
    }
  if (unresolved > 0)
    report.notes.push_back(fmt::format(
        "{} element(s) could not be resolved to the tolerance: the rounding of f's values over the widest step "
        "that still measures a slope (wider ones show f's curvature) stays above it (up to {:.3g}), and was "
        "allowed; f's values are large against these derivatives (another input, or a float32 loss)",
        unresolved, largest));
  std::size_t undefined = 0;
  for (const GradcheckElement& e : elements) undefined += std::isfinite(e.numeric) ? 0 : 1;
  if (undefined > 0)
    report.notes.push_back(fmt::format(
        "{} element(s) have no finite central difference (numeric nan or inf), so nothing checks them and they "
        "fail: f is not finite within the step of the point (an op at the edge of its domain: log or sqrt near 0), "
        "or the step (eps {}) does not move the input; no op is blamed for them",
        undefined, tol.eps));
  report.eps = tol.eps;
  report.atol = tol.atol;
  report.rtol = tol.rtol;
}

void fail_excused_kinks(GradcheckReport& report) {
  if (!report.localisation.faulty || report.at_kinks.empty()) return;
  for (GradcheckElement& e : report.at_kinks) {
    e.at_kink = false;
    e.passed = false;
    for (ParameterCheck& p : report.parameters)
      if (p.name == e.input) {
        ++p.failures;
        p.passed = false;
      }
    report.failures.push_back(std::move(e));
  }
  report.at_kinks.clear();
  for (GradcheckElement& e : report.worst)
    if (e.at_kink) {
      e.at_kink = false;
      e.passed = false;
    }
  report.passed = false;
}

bool backwards_differ(double first, double second, double nondet_tol) {
  if (std::isnan(first) || std::isnan(second)) return std::isnan(first) != std::isnan(second);
  return first != second && !(std::abs(first - second) <= nondet_tol);
}

void file_nondeterministic(GradcheckReport& report, std::vector<NondeterministicGradient> found, double nondet_tol) {
  report.nondet_tol = nondet_tol;
  if (found.empty()) return;
  auto gap = [](const NondeterministicGradient& g) {
    const double d = std::abs(g.first - g.second);
    return std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  };
  std::stable_sort(found.begin(), found.end(), [&](const auto& a, const auto& b) { return gap(a) > gap(b); });
  report.nondeterministic = std::move(found);
  report.passed = false;
}

void add_differing(const std::string& input, const Shape& shape, const std::string& suffix,
                   const std::vector<double>& first, const std::vector<double>& second, double nondet_tol,
                   std::vector<NondeterministicGradient>& out) {
  for (std::size_t j = 0; j < first.size() && j < second.size(); ++j)
    if (backwards_differ(first[j], second[j], nondet_tol))
      out.push_back({input, index_string(shape, static_cast<int64_t>(j)) + suffix, first[j], second[j]});
}

namespace {

void refuse(GradcheckReport& report, std::string reason) {
  report.passed = false;
  report.refused = std::move(reason);
  report.worst.clear();
  report.failures.clear();
  report.at_kinks.clear();
  report.non_differentiable.clear();
  report.nondeterministic.clear();
  report.parameters.clear();
}

}  // namespace

bool refuse_nondeterministic(GradcheckReport& report, double first, double second, double rel) {
  if (first == second || std::abs(first - second) <= rel * std::max({1.0, std::abs(first), std::abs(second)}) ||
      (std::isnan(first) && std::isnan(second)))
    return false;
  refuse(report, fmt::format("f gave {} and then {} at the same point: a random or stateful function cannot be "
                             "checked by differences (fix its seed, or check the deterministic part)",
                             first, second));
  return true;
}

void check_finite_input(const char* what, std::string_view input, double value) {
  if (std::isfinite(value)) return;
  throw std::invalid_argument(fmt::format("{}: {} is {}: a gradient cannot be checked at a point that is not finite",
                                          what, input, value));
}

void check_finite_input(const char* what, std::string_view input, const Tensor& t) {
  const std::vector<double> values = t.to_vector();
  for (std::size_t j = 0; j < values.size(); ++j)
    if (!std::isfinite(values[j]))
      check_finite_input(what, fmt::format("{} element {}", input, index_string(t.shape(), static_cast<int64_t>(j))),
                         values[j]);
}

std::string anomaly_in(const std::function<void()>& evaluate) {
  try {
    const DetectAnomalyGuard anomaly;
    evaluate();
  } catch (const AnomalyError& e) {
    return e.what();
  }
  return {};
}

void refuse_not_finite(GradcheckReport& report, std::string_view output, double value, const std::string& anomaly) {
  refuse(report, fmt::format("f{} is {} at this point, so no difference of it means anything{}", output, value,
                             anomaly.empty() ? " (an op outside its domain: log or sqrt of a negative number?)"
                                             : fmt::format("; DetectAnomalyGuard: {}", anomaly)));
}

void validate(const GradcheckOptions& o, bool function_set, const char* what) {
  if (!function_set) throw std::invalid_argument(fmt::format("{}: the function to check is empty", what));
  auto step = [&](const char* name, double v) {
    if (!(std::isfinite(v) && v > 0))
      throw std::invalid_argument(fmt::format("{}: {} must be finite and > 0, got {}", what, name, v));
  };
  auto tolerance = [&](const char* name, double v) {
    if (!(std::isfinite(v) && v >= 0))
      throw std::invalid_argument(fmt::format("{}: {} must be finite and >= 0, got {}", what, name, v));
  };
  step("eps", o.eps);
  step("float32_eps", o.float32_eps);
  tolerance("atol", o.atol);
  tolerance("rtol", o.rtol);
  tolerance("float32_atol", o.float32_atol);
  tolerance("float32_rtol", o.float32_rtol);
  tolerance("nondet_tol", o.nondet_tol);
  if (o.directions > (std::size_t{1} << 20))
    throw std::invalid_argument(
        fmt::format("{}: directions must be at most 2^20 (0 checks every element), got {}", what, o.directions));
}

void add_kink(GradcheckReport& report, NonDifferentiablePoint point) {
  for (const NonDifferentiablePoint& p : report.non_differentiable)
    if (p.op == point.op && p.operand == point.operand && p.index == point.index &&
        p.where.line() == point.where.line() && std::string_view(p.where.file_name()) == point.where.file_name())
      return;
  report.non_differentiable.push_back(std::move(point));
}

void finish(GradcheckReport& report, const GradcheckOptions& options) {
  if (options.throw_on_failure && !report.passed) throw GradcheckError(report);
}

std::function<double(std::span<const double>)> builtin_forward(std::string_view name) {
  using F = std::function<double(std::span<const double>)>;
  auto unary = [](auto op) -> F { return [](std::span<const double> x) { return decltype(op)::f(x[0]); }; };
  auto binary = [](auto op) -> F { return [](std::span<const double> x) { return decltype(op)::f(x[0], x[1]); }; };
  if (name == ops::Neg::name) return unary(ops::Neg{});
  if (name == ops::Exp::name) return unary(ops::Exp{});
  if (name == ops::Log::name) return unary(ops::Log{});
  if (name == ops::Sqrt::name) return unary(ops::Sqrt{});
  if (name == ops::Sigmoid::name) return unary(ops::Sigmoid{});
  if (name == ops::Tanh::name) return unary(ops::Tanh{});
  if (name == ops::Relu::name) return unary(ops::Relu{});
  if (name == ops::Abs::name) return unary(ops::Abs{});
  if (name == ops::Erf::name) return unary(ops::Erf{});
  if (name == ops::Expm1::name) return unary(ops::Expm1{});
  if (name == ops::Log1p::name) return unary(ops::Log1p{});
  if (name == ops::Add::name) return binary(ops::Add{});
  if (name == ops::Sub::name) return binary(ops::Sub{});
  if (name == ops::Mul::name) return binary(ops::Mul{});
  if (name == ops::Div::name) return binary(ops::Div{});
  if (name == ops::Pow::name) return binary(ops::Pow{});
  if (name == ops::Dot::name) return ops::Dot::f;
  return {};
}

Tensor float64_copy(const Tensor& t) { return from_vector(t.to_vector(), t.shape(), DType::float64); }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

double set_element(Tensor& t, int64_t j, double v) {
  double stored = 0;
  detail::dispatch(t.dtype(), [&]<class T>() {
    t.mutable_data<T>()[j] = static_cast<T>(v);
    stored = static_cast<double>(static_cast<T>(v));
  });
  return stored;
}

std::string index_string(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(static_cast<std::size_t>(shape.size()));
  for (int d = shape.size() - 1; d >= 0; --d) {
    const int64_t extent = std::max<int64_t>(shape[d], 1);
    index[static_cast<std::size_t>(d)] = flat % extent;
    flat /= extent;
  }
  return fmt::format("[{}]", fmt::join(index, ", "));
}

std::vector<std::vector<double>> random_directions(std::size_t count, std::size_t size, uint64_t seed) {
  Generator gen(seed);
  std::vector<std::vector<double>> out(count, std::vector<double>(size));
  for (std::vector<double>& v : out) {
    double norm = 0;
    while (norm == 0 && size > 0) {
      for (double& x : v) x = gen.normal(0, 1);
      for (double x : v) norm += x * x;
    }
    norm = std::sqrt(norm);
    for (double& x : v) x /= norm;
  }
  return out;
}

}  // namespace detail::gradcheck

}  // namespace chainrule
