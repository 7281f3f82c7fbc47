// gradcheck's localisation for Tensor graphs: every recorded op (a Node) that kept a replay of its
// forward (detail::ReplayGuard) is re-checked on its own: its backward, applied to a random upstream
// gradient r, against central differences of <r, replay(inputs)>, element by element.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <unordered_set>

#include "autograd/anomaly.h"
#include "autograd/gradcheck_detail.h"
#include "autograd/ops.h"
#include "autograd/tensor_impl.h"

namespace chainrule::detail::gradcheck {

namespace {

// The nodes below `root`, in recording order (explicit stack: graphs can be deep).
std::vector<Node*> recorded_nodes(const Tensor& root) {
  std::vector<Node*> nodes, stack;
  std::unordered_set<Node*> seen;
  if (Node* n = root.impl()->grad_fn.get()) {
    stack.push_back(n);
    seen.insert(n);
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    for (const Edge& e : n->next)
      if (Node* m = e.fn.get(); m && seen.insert(m).second) stack.push_back(m);
  }
  std::sort(nodes.begin(), nodes.end(), [](const Node* a, const Node* b) { return a->sequence < b->sequence; });
  return nodes;
}

std::string describe(const Node& n) { return fmt::format("{} at {}", n.name, chainrule::to_string(n.where)); }

// Re-checks input k of node n. Returns false when a disagreement was filed (the search stops).
bool recheck_input(Node& n, std::size_t k, const std::vector<Tensor>& inputs64, const std::vector<double>& r,
                   const std::vector<double>& analytic, const Tolerance& tol64, const GradcheckOptions& options,
                   GradcheckReport& report) {
  std::vector<Tensor> ins = inputs64;
  ins[k] = float64_copy(inputs64[k]);
  const Shape shape = ins[k].shape();
  double* x = ins[k].mutable_data<double>();
  const std::vector<double> x0(x, x + ins[k].numel());
  const Tensor y0 = n.replay(ins);
  // An op that computes in float32 whatever its inputs (a cast to it) is compared with float32's
  // step and tolerances: at float64's, its rounding swamps the differences.
  const Tolerance tol = y0.dtype() == DType::float32
                            ? Tolerance{options.float32_eps, options.float32_atol, options.float32_rtol,
                                        std::numeric_limits<float>::epsilon()}
                            : tol64;
  const double v0 = dot(r, y0.to_vector());
  auto check = [&](std::string index, double a, double at, auto&& g) {
    Differences d;
    const Verdict v = judge(a, v0, tol, g, d);
    if (v == Verdict::kink) add_kink(report, {std::string(n.name), n.where, k, index, at, d.left, d.right, a});
    // No finite difference (the op's forward is not finite within the step: the edge of its
    // domain) is no evidence against its backward.
    if (v != Verdict::disagrees || !std::isfinite(d.central)) return true;
    report.localisation.faulty = FaultyOp{std::string(n.name), n.where, k, std::move(index), a, d.central, {}};
    return false;
  };
  if (options.directions == 0) {
    for (std::size_t j = 0; j < x0.size(); ++j) {
      auto g = [&](double t) {
        x[j] = x0[j] + t;
        const Probe p{dot(r, n.replay(ins).to_vector()), x[j] - x0[j]};
        x[j] = x0[j];
        return p;
      };
      if (!check(index_string(shape, static_cast<int64_t>(j)), analytic[j], x0[j], g)) return false;
    }
    return true;
  }
  const auto dirs = random_directions(options.directions, x0.size(), options.seed + 17 + k);
  for (std::size_t d = 0; d < dirs.size(); ++d) {
    auto g = [&](double t) {
      for (std::size_t j = 0; j < x0.size(); ++j) x[j] = x0[j] + t * dirs[d][j];
      const Probe p{dot(r, n.replay(ins).to_vector()), t};
      for (std::size_t j = 0; j < x0.size(); ++j) x[j] = x0[j];
      return p;
    };
    if (!check(fmt::format("direction {}", d), dot(analytic, dirs[d]), std::nan(""), g)) return false;
  }
  return true;
}

// The first element where two answers of n's backward to the same upstream gradient differ.
std::optional<NondeterministicOp> differing(const Node& n, const std::vector<Tensor>& first,
                                            const std::vector<Tensor>& second, const GradcheckOptions& options) {
  for (std::size_t k = 0; k < first.size() && k < second.size(); ++k) {
    if (!first[k].defined() || !second[k].defined()) continue;
    const std::vector<double> a = first[k].to_vector(), b = second[k].to_vector();
    for (std::size_t j = 0; j < a.size() && j < b.size(); ++j)
      if (backwards_differ(a[j], b[j], options.nondet_tol))
        return NondeterministicOp{std::string(n.name), n.where, k, a[j], b[j]};
  }
  return std::nullopt;
}

}  // namespace

void localise_tensor(const Tensor& root, const Tolerance& tol, const GradcheckOptions& options,
                     GradcheckReport& report) {
  Localisation& loc = report.localisation;
  loc.ran = true;
  std::set<std::string> unchecked;
  uint64_t node_seed = options.seed + 101;
  for (Node* n : recorded_nodes(root)) {
    if (!n->has_replay()) {
      if (unchecked.insert(describe(*n)).second) loc.not_rechecked.push_back(describe(*n));
      continue;
    }
    NoGradGuard no_grad;
    std::vector<Tensor> grads, inputs64;
    std::vector<double> r;
    try {
      const Tensor y = n->replay(n->replay_inputs());
      Generator gen(node_seed++);
      r.resize(static_cast<std::size_t>(y.numel()));
      for (double& v : r) v = gen.normal(0, 1);
      const Tensor seed = from_vector(r, y.shape(), y.dtype());
      grads = n->apply(seed);
      // The backward was not deterministic: is it this op's? Asked twice with the same upstream
      // gradient, it must answer the same.
      if (!report.nondeterministic.empty() && !loc.nondeterministic)
        loc.nondeterministic = differing(*n, grads, n->apply(seed), options);
    } catch (const std::exception& e) {
      const std::string why = fmt::format("{} (re-running it threw: {})", describe(*n), e.what());
      if (unchecked.insert(why).second) loc.not_rechecked.push_back(why);
      continue;
    }
    for (const Tensor& t : n->replay_inputs()) inputs64.push_back(t.defined() ? float64_copy(t) : t);
    ++loc.ops_checked;
    for (std::size_t k = 0; k < inputs64.size(); ++k) {
      if (!n->needs(k) || !inputs64[k].defined()) continue;
      std::vector<double> analytic(static_cast<std::size_t>(inputs64[k].numel()), 0.0);
      if (k < grads.size() && grads[k].defined()) {
        // The engine sums a broadcast gradient back to the input's shape; so does this check.
        const Tensor g = grads[k].shape() == inputs64[k].shape() ? grads[k] : sum_to(grads[k], inputs64[k].shape());
        analytic = g.to_vector();
      }
      if (!recheck_input(*n, k, inputs64, r, analytic, tol, options, report)) return;
    }
  }
}

void localise_second_order(const Tensor& root, const GradcheckOptions& options, GradcheckReport& report) {
  GradcheckOptions alone = options;
  alone.localise = false;
  alone.throw_on_failure = false;
  for (Node* n : recorded_nodes(root)) {
    if (!n->extras || !n->extras->rerecord) continue;
    std::vector<Tensor> inputs;
    for (std::size_t k = 0; k < n->replay_inputs().size(); ++k) {
      const Tensor& t = n->replay_inputs()[k];
      // As recorded: gradgradcheck checks float32 inputs in float64 copies and in float32 both.
      inputs.push_back(t.defined() ? t.detach().clone().set_requires_grad(n->needs(k)) : t);
    }
    GradcheckReport op;
    try {
      op = gradgradcheck(n->extras->rerecord, inputs, alone);
    } catch (const std::exception& e) {
      const std::string why = fmt::format("{} (its second derivatives: {})", describe(*n), e.what());
      report.localisation.not_rechecked.push_back(why);
      continue;
    }
    ++report.localisation.ops_checked;
    if (op.passed || !op.refused.empty() || op.failures.empty()) continue;
    const GradcheckElement& e = op.failures.front();
    std::size_t operand = 0;
    std::sscanf(e.input.c_str(), "input %zu", &operand);
    report.localisation.faulty =
        FaultyOp{std::string(n->name), n->where, operand, e.index, e.analytic, e.numeric, {}, 2};
    return;
  }
}

void localise_captured(const Tensor& root, std::vector<std::pair<std::string, Tensor>> failing,
                       GradcheckReport& report) {
  NoGradGuard no_grad;
  for (Node* n : recorded_nodes(root)) {
    if (!n->extras || !n->extras->rerecord) continue;  // built-in ops read only their inputs
    std::vector<double> y0;
    try {
      y0 = n->replay(n->replay_inputs()).to_vector();
    } catch (const std::exception&) {
      continue;  // listed as not re-checkable by localise_tensor already
    }
    for (auto& [name, p] : failing) {
      const PutBack put_back(p);
      const std::vector<double>& x = put_back.values();
      for (std::size_t j = 0; j < x.size(); ++j)
        set_element(p, static_cast<int64_t>(j), x[j] + 1e-3 * (1 + std::abs(x[j])));
      std::vector<double> y1;
      try {
        y1 = n->replay(n->replay_inputs()).to_vector();
      } catch (const std::exception&) {
        continue;
      }
      if (y1 != y0) {
        report.localisation.faulty = FaultyOp{std::string(n->name), n->where, 0, "", 0, 0, {}, 1, name};
        return;
      }
    }
  }
}

void scan_tensor_kinks(const Tensor& root, const Tolerance& tol, GradcheckReport& report) {
  constexpr std::size_t kPerOp = 3;  // elements listed per op; the rest are counted in a note
  for (Node* n : recorded_nodes(root)) {
    const bool relu = n->name == ops::Relu::name, abs = n->name == ops::Abs::name;
    if (!(relu || abs) || n->replay_inputs().empty() || !n->replay_inputs()[0].defined() || !n->needs(0)) continue;
    const Tensor& in = n->replay_inputs()[0];
    const auto f = builtin_forward(n->name);
    const std::vector<double> x = in.to_vector();
    std::size_t found = 0;
    for (std::size_t j = 0; j < x.size(); ++j) {
      if (std::abs(x[j]) > tol.eps) continue;
      if (++found > kPerOp) continue;
      const double at[] = {x[j]}, minus[] = {x[j] - tol.eps}, plus[] = {x[j] + tol.eps};
      const Differences d = differences(f(minus), f(at), f(plus), tol.eps);
      const double y = f(at);
      const double analytic = relu ? ops::Relu::dx(1.0, x[j], y) : ops::Abs::dx(1.0, x[j], y);
      add_kink(report, {std::string(n->name), n->where, 0, index_string(in.shape(), static_cast<int64_t>(j)), x[j],
                        d.left, d.right, analytic});
    }
    if (found > kPerOp)
      report.notes.push_back(fmt::format("{} more elements of the input of {} sit within eps of its kink at 0",
                                         found - kPerOp, describe(*n)));
  }
}

}  // namespace chainrule::detail::gradcheck
