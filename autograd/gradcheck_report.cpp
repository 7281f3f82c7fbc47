// GradcheckReport's text: the verdict, the tables of worst elements and of backwards that
// disagreed, the localisation, kinks and notes; and GradcheckError.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <ostream>

#include "autograd/gradcheck.h"

namespace chainrule {

namespace {

std::string num(double x) { return fmt::format("{:.6g}", x); }

std::string where_string(const Where& where) { return chainrule::to_string(where); }

// A fixed-width table: the first row is the header.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (std::size_t c = 0; c < row.size(); ++c) line += fmt::format("{:<{}}  ", row[c], width[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// A table whose column 1 is the element index, left out when no item of `all` has one (Scalars
// have none).
template <class Item>
std::string indexed_table(std::vector<std::vector<std::string>> rows, const std::vector<Item>& all) {
  if (std::none_of(all.begin(), all.end(), [](const Item& e) { return !e.index.empty(); }))
    for (auto& row : rows) row.erase(row.begin() + 1);
  return table(rows, "  ");
}

std::string element_table(const std::vector<GradcheckElement>& elements, std::size_t limit) {
  std::vector<std::vector<std::string>> rows = {{"input", "index", "analytic", "numeric", "abs err", "rel err", ""}};
  for (std::size_t i = 0; i < elements.size() && i < limit; ++i) {
    const GradcheckElement& e = elements[i];
    rows.push_back({e.input, e.index, num(e.analytic), num(e.numeric), num(e.abs_error), num(e.rel_error),
                    e.at_kink ? "kink" : (e.passed ? "ok" : "FAIL")});
  }
  return indexed_table(std::move(rows), elements);
}

}  // namespace

std::string GradcheckReport::to_string() const {
  std::string out;
  const std::string unit = checked == 1 ? "element" : "elements";
  if (!refused.empty()) {
    out += fmt::format("{}: REFUSED: {}\n", what, refused);
  } else if (passed) {
    out += fmt::format("{}: passed: {} {} checked, none fails (eps {}, atol {}, rtol {})\n", what, checked, unit,
                       num(eps), num(atol), num(rtol));
  } else if (failures.empty() && !nondeterministic.empty()) {
    out += fmt::format("{}: FAILED: the backward is not deterministic ({} {} checked against differences, none "
                       "disagrees; eps {}, atol {}, rtol {})\n",
                       what, checked, unit, num(eps), num(atol), num(rtol));
  } else {
    out += fmt::format("{}: FAILED: {} of {} {} {} (eps {}, atol {}, rtol {})\n", what, failures.size(), checked,
                       unit, failures.size() == 1 ? "disagrees" : "disagree", num(eps), num(atol), num(rtol));
  }
  if (!nondeterministic.empty()) {
    out += fmt::format("not deterministic: two backward passes through the same graph gave different gradients for "
                       "{} {} (nondet_tol {}):\n",
                       nondeterministic.size(), nondeterministic.size() == 1 ? "element" : "elements", num(nondet_tol));
    std::vector<std::vector<std::string>> rows = {{"input", "index", "first", "second", "difference"}};
    for (std::size_t i = 0; i < nondeterministic.size() && i < 4; ++i) {
      const NondeterministicGradient& g = nondeterministic[i];
      rows.push_back({g.input, g.index, num(g.first), num(g.second), num(std::abs(g.first - g.second))});
    }
    out += indexed_table(std::move(rows), nondeterministic);
  }
  if (!parameters.empty()) {
    std::vector<std::vector<std::string>> rows = {{"parameter", "shape", "checked", "failures", "max abs err", ""}};
    for (const ParameterCheck& p : parameters)
      rows.push_back({p.name, p.shape, std::to_string(p.checked), std::to_string(p.failures), num(p.max_abs_error),
                      p.passed ? "ok" : "FAIL"});
    out += "per parameter:\n" + table(rows, "  ");
  }
  if (!worst.empty()) {
    out += failures.empty() ? "worst elements:\n"
                            : "worst elements (a failure: |analytic - numeric| > atol + rtol * |numeric|):\n";
    out += element_table(worst, worst.size());
  }
  if (localisation.ran) {
    if (const auto& f = localisation.faulty; f && f->order == 2) {
      out += fmt::format("localisation: the first op whose backward is right but not differentiable as written is '{}', "
                         "recorded at {}: the derivative of its backward disagrees with central differences of that "
                         "backward (a detach, or a value taken as a plain number, inside it?)\n",
                         f->op, where_string(f->where));
      out += fmt::format("  the op alone, Hessian-vector product, input {}{}: create_graph gives {}, central differences "
                         "of its backward give {}\n",
                         f->operand, f->index.empty() ? "" : " element " + f->index, num(f->analytic), num(f->numeric));
    } else if (f && !f->reads_parameter.empty()) {
      out += fmt::format("localisation: '{}', recorded at {}, reads parameter '{}' without taking it as an input (a "
                         "capture in its forward?): its output moves with '{}', but no gradient can reach it; pass "
                         "it among the op's inputs and return its gradient from the backward\n",
                         f->op, where_string(f->where), f->reads_parameter, f->reads_parameter);
    } else if (f) {
      out += fmt::format("localisation: the first op whose backward disagrees with its own forward is '{}', recorded at {}\n",
                         f->op, where_string(f->where));
      std::string at;
      if (!f->at.empty()) {
        std::vector<std::string> values;
        for (double v : f->at) values.push_back(num(v));
        at = fmt::format(" at ({})", fmt::join(values, ", "));
      }
      out += fmt::format("  d {} / d input {}{}{}: backward gives {}, central differences of its forward give {}\n",
                         f->op, f->operand, f->index.empty() ? "" : " element " + f->index, at, num(f->analytic),
                         num(f->numeric));
    } else {
      out += fmt::format("localisation: all {} re-checked ops agree with their own forwards{}\n", localisation.ops_checked,
                         localisation.not_rechecked.empty() ? "" : "; the fault is in an op that could not be re-checked");
    }
    if (localisation.faulty)
      out += fmt::format("  ({} {} re-checked in recording order)\n", localisation.ops_checked,
                         localisation.ops_checked == 1 ? "op" : "ops");
    if (const auto& n = localisation.nondeterministic)
      out += fmt::format("localisation: the first op whose backward is not deterministic is '{}', recorded at {}: "
                         "asked twice with the same inputs and upstream gradient, it gave {} and then {} for input {}\n",
                         n->op, where_string(n->where), num(n->first), num(n->second), n->operand);
    if (!localisation.not_rechecked.empty())
      out += fmt::format("  not re-checkable (no replay of their forward): {}\n", fmt::join(localisation.not_rechecked, "; "));
  }
  for (const NonDifferentiablePoint& p : non_differentiable) {
    out += fmt::format("not differentiable at: '{}' recorded at {}, input {}{} = {}: one-sided derivatives {} and {} "
                       "(the backward uses {})\n",
                       p.op, where_string(p.where), p.operand, p.index.empty() ? "" : " element " + p.index, num(p.at),
                       num(p.left), num(p.right), num(p.analytic));
  }
  if (!at_kinks.empty()) {
    out += fmt::format("{} only because the central difference straddles a kink; not counted as failures:\n",
                       at_kinks.size() == 1 ? "1 element disagrees" : fmt::format("{} elements disagree", at_kinks.size()));
    out += element_table(at_kinks, 4);
  }
  for (const std::string& note : notes) out += "note: " + note + "\n";
  return out;
}

std::ostream& operator<<(std::ostream& os, const GradcheckReport& report) { return os << report.to_string(); }

GradcheckError::GradcheckError(GradcheckReport report)
    : std::runtime_error(report.to_string()), report_(std::move(report)) {}

}  // namespace chainrule
