// Chain-rule traces of Scalar graphs: the terms are recomputed from graph_view's local derivatives
// in one reverse pass over the creation order (no recursion, every edge once).
#include "autograd/trace.h"

#include <fmt/format.h>

#include <cctype>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <stdexcept>
#include <unordered_map>

#include "autograd/scalar_tape.h"
#include "autograd/trace_detail.h"

namespace chainrule {

namespace {

constexpr std::size_t kMaxExpression = 48;  // longer expressions are shown as op#id

const char* infix(std::string_view op) {
  if (op == "add") return "+";
  if (op == "sub") return "-";
  if (op == "mul") return "*";
  if (op == "div") return "/";
  if (op == "pow") return "^";
  return nullptr;
}

bool is_activation(std::string_view op) { return op == "sigmoid" || op == "tanh" || op == "relu"; }

// Names every node: its label, a constant's value, or the expression it computes from its
// operands' names. `compound[i]` marks infix expressions, which need parentheses inside a tighter
// operator.
std::vector<std::string> node_names(const std::vector<ScalarNodeView>& view) {
  std::vector<std::string> names(view.size());
  std::vector<bool> compound(view.size(), false);
  for (const ScalarNodeView& n : view) {
    if (!n.label.empty()) {
      names[n.id] = n.label;
      // A label that reads as an expression ("ON - y") is bracketed inside a tighter operator.
      for (const char* op : {" + ", " - ", " * ", " / ", " ^ "})
        compound[n.id] = compound[n.id] || n.label.find(op) != std::string::npos;
    } else if (n.is_constant) {
      names[n.id] = fmt::format("{}", n.value);
    } else if (n.is_leaf) {
      names[n.id] = fmt::format("leaf#{}", n.id);
    } else {
      auto operand = [&](std::size_t k, bool tight) {
        const std::size_t j = n.inputs[k];
        return compound[j] && tight ? fmt::format("({})", names[j]) : names[j];
      };
      std::string expression;
      if (const char* symbol = infix(n.op); symbol && n.inputs.size() == 2) {
        const bool tight = n.op != "add";
        expression = fmt::format("{} {} {}", operand(0, tight && n.op != "sub"), symbol, operand(1, tight));
        compound[n.id] = true;
      } else if (n.op == "neg" && n.inputs.size() == 1) {
        expression = fmt::format("-{}", operand(0, true));
        compound[n.id] = true;  // (-x) ^ 2, not -x ^ 2
      } else {
        std::vector<std::string> args;
        for (std::size_t k = 0; k < n.inputs.size(); ++k) args.push_back(operand(k, false));
        expression = fmt::format("{}({})", n.op, fmt::join(args, ", "));
      }
      if (expression.size() > kMaxExpression) {
        expression = fmt::format("{}#{}", n.op, n.id);
        compound[n.id] = false;
      }
      names[n.id] = std::move(expression);
    }
  }
  // Two unlabelled nodes computing the same expression (tanh(x) twice, leaf#0 * leaf#0 twice) get
  // their ids, so that a term's "(consumer)" and node(name) tell them apart; a name that already
  // is op#id is unique.
  std::unordered_map<std::string, int> count;
  for (const ScalarNodeView& n : view) ++count[names[n.id]];
  for (const ScalarNodeView& n : view)
    if (n.label.empty() && !n.is_constant && !n.is_leaf && count[names[n.id]] > 1 &&
        names[n.id] != fmt::format("{}#{}", n.op, n.id))
      names[n.id] += fmt::format("#{}", n.id);
  return names;
}

}  // namespace

namespace detail {

bool backward_started_at(const Scalar& root) { return ScalarTape::current().backward_started_at(root); }

std::string format_number(double value, const TraceOptions& options) {
  if (options.digits < 0 || options.digits > 30)
    throw std::invalid_argument(
        fmt::format("trace and to_dot: digits (TraceOptions, DotOptions) must be in [0, 30], got {}", options.digits));
  if (std::isnan(value)) return "nan";  // not "-nan" for a NaN with its sign bit set
  std::string s = options.fixed ? fmt::format("{:.{}f}", value, options.digits)
                                : fmt::format("{:.{}g}", value, options.digits);
  if (s.starts_with("-") && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

ChainRuleTrace build_trace(const Scalar& root, bool require_backward) {
  const std::vector<ScalarNodeView> view = graph_view(root);
  ChainRuleTrace t;
  const ScalarNodeView& top = view.back();
  t.seed = top.is_constant ? 0.0 : top.grad;
  // A leaf alone is its own graph: its gradient is the seed.
  t.from_root = view.size() == 1 ? true : detail::backward_started_at(root);
  t.reached = !top.is_constant && top.sweep != 0;
  if (require_backward && top.is_constant)
    throw std::logic_error("trace: the root is a constant: no gradient flows through it");
  // Reached, not a gradient != 0: relu at z < 0 passes exactly 0 and was reached all the same.
  if (require_backward && !t.reached)
    throw std::logic_error(
        "trace: no backward has reached this Scalar: call root.backward() first, and trace before recording new ops "
        "(they may reuse the graph's memory)");
  const std::vector<std::string> names = node_names(view);
  for (const ScalarNodeView& n : view) {
    TraceNode node;
    node.id = n.id;
    node.name = names[n.id];
    node.op = n.op;
    node.value = n.value;
    node.inputs = n.inputs;
    node.is_leaf = n.is_leaf;
    node.is_constant = n.is_constant;
    t.nodes.push_back(std::move(node));
  }
  t.nodes.back().is_root = true;
  t.nodes.back().grad = t.seed;
  // Creation order is a topological order: in reverse, a node's gradient is complete before it is
  // passed on to its operands.
  for (std::size_t i = view.size(); i-- > 0;) {
    const ScalarNodeView& n = view[i];
    if (n.is_constant) continue;
    t.backward_order.push_back(i);
    // A backward that started at another output: a node below the root may also reach that output
    // by paths that avoid the root, so its gradient is the one that sweep left in it, and what
    // those paths sent is the difference from its terms here. (A node a later backward reached
    // again holds that one's gradient: it keeps the sum of its terms here.)
    if (!t.from_root && i + 1 != view.size() && n.sweep == top.sweep) {
      TraceNode& node = t.nodes[i];
      node.outside = n.adjoint - node.grad;
      node.grad = n.adjoint;
    }
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const std::size_t j = n.inputs[k];
      if (view[j].is_constant) continue;
      const double local = k < n.local.size() ? n.local[k] : 0.0;
      const TraceTerm term{i, k, t.nodes[i].grad, local, t.nodes[i].grad * local};
      t.nodes[j].terms.push_back(term);
      t.nodes[j].grad += term.contribution;
    }
    if (is_activation(n.op) && n.inputs.size() == 1) {
      const double derivative = n.local.empty() ? 0.0 : n.local[0];
      t.neurons.push_back({names[i], i, n.inputs[0], n.value, t.nodes[i].grad, derivative, 0.0});
    }
  }
  // Backprop Err is dC/dz, z's own gradient, complete only once every consumer of z has sent its
  // share (some may come after a in backward order): Err x f'(z) when a is z's only consumer (every
  // neuron of the lecture), more when z also feeds something else (and then what to_dot shows).
  for (TraceNeuron& neuron : t.neurons) neuron.bpe = t.nodes[neuron.input].grad;
  return t;
}

// A fixed-width table for the terminal; the first row is the header.
std::string text_table(const std::vector<std::vector<std::string>>& rows) {
  // Columns are padded by characters shown, not bytes: a UTF-8 character's continuation bytes
  // (10xxxxxx) take no column of their own (a label such as "θ1").
  auto shown = [](const std::string& s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char ch) {
      return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    }));
  };
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], shown(row[c]));
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = " ";
    for (std::size_t c = 0; c < row.size(); ++c) line += " " + row[c] + std::string(width[c] - shown(row[c]), ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (is_control(c)) c = ' ';
  return s;
}

std::string code_span(const std::string& s) {
  const std::string text = one_line(s);
  std::size_t longest = 0, run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  if (longest == 0) return "`" + text + "`";
  const std::string fence(longest + 1, '`');
  return fence + " " + text + " " + fence;  // the spaces are stripped by the renderer
}

std::string markdown_text(const std::string& s) {
  std::string out;
  for (char c : one_line(s)) {
    if (std::string_view("\\`*_[]<>&#!~").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

namespace {
std::string markdown_cell(const std::string& s) {
  std::string out;
  // '|' would end the cell and a line break the row (one_line makes every control character a space).
  for (char c : one_line(s)) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
}  // namespace

std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::vector<std::string> cells;
    for (const std::string& c : rows[r]) cells.push_back(markdown_cell(c));
    out += fmt::format("| {} |\n", fmt::join(cells, " | "));
    if (r == 0) {
      out += "|";
      for (std::size_t c = 0; c < rows[0].size(); ++c) out += " --- |";
      out += "\n";
    }
  }
  return out;
}

}  // namespace detail

ChainRuleTrace trace(const Scalar& root) { return detail::build_trace(root, true); }

const TraceNode& ChainRuleTrace::node(std::string_view name) const {
  return detail::node_named(nodes, name, "ChainRuleTrace::node");
}

const TraceNeuron& ChainRuleTrace::neuron(std::string_view name) const {
  for (const TraceNeuron& n : neurons)
    if (n.name == name) return n;
  std::vector<std::string> known;
  for (const TraceNeuron& n : neurons) known.push_back(n.name);
  throw std::out_of_range(fmt::format("ChainRuleTrace::neuron: no activation named '{}'; the activations are: {}",
                                      name, fmt::join(known, ", ")));
}

namespace {

// Renders the trace; `markdown` picks pipe tables, code-span names and the multiplication sign.
std::string render(const ChainRuleTrace& t, const TraceOptions& options, bool markdown) {
  auto num = [&](double v) { return detail::format_number(v, options); };
  auto name = [&](std::size_t id) {
    return markdown ? detail::code_span(t.nodes[id].name) : detail::one_line(t.nodes[id].name);
  };
  const char* times = markdown ? " × " : " x ";
  auto term = [&](const TraceTerm& e) {
    return fmt::format("{}{}{} ({})", num(e.upstream), times, num(e.local), name(e.consumer));
  };
  // The terms of a node, and what reached it from outside this trace (a backward that started at
  // another output), unless that is only the rounding of a different order of summing.
  auto parts_of = [&](const TraceNode& n) {
    std::vector<std::string> parts;
    double scale = std::abs(n.grad);
    for (const TraceTerm& e : n.terms) {
      parts.push_back(term(e));
      scale += std::abs(e.contribution);
    }
    if (n.outside != 0 && std::abs(n.outside) > 1e-12 * scale)
      parts.push_back(fmt::format("{} (from outside this trace)", num(n.outside)));
    return parts;
  };
  if (t.nodes.empty()) return "(an empty chain-rule trace: made by trace(root), not by hand)\n";
  const std::size_t root = t.nodes.size() - 1;
  // The root's symbol in dC/dnode: its name when that is one word ("C"), else "(root)".
  // When the backward started elsewhere, every gradient is d(that output)/d node: "(output)".
  const std::string root_name = detail::one_line(t.nodes[root].name);
  // One word of letters and digits (or UTF-8, "θ"): anything else could be Markdown or read as more
  // than a name in dC/dC.
  const bool word = !root_name.empty() && std::all_of(root_name.begin(), root_name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || (static_cast<unsigned char>(ch) & 0x80) != 0;
  });
  const std::string c = !t.from_root ? "(output)" : word ? root_name : "(root)";
  std::string out;
  const std::string bold = markdown ? "**" : "";
  if (t.from_root)
    out += fmt::format("{0}Chain-rule trace of {1} = {2}{0} (backward seed d{3}/d{3} = {4})\n{5}", bold, name(root),
                       num(t.nodes[root].value), c, num(t.seed), markdown ? "\n" : "");
  else
    out += fmt::format("{0}Chain-rule trace of {1} = {2}{0} (the gradients of a backward that did not start here: "
                       "each is d(output)/d(node) for the output it started at, and a term 'from outside this trace' is what reached a "
                       "node along paths to that output that avoid {1}; {1}'s own is {3})\n{4}",
                       bold, name(root), num(t.nodes[root].value), num(t.seed), markdown ? "\n" : "");
  out += fmt::format("Each term is upstream gradient{}local derivative (consumer); a node's gradient is the sum of its "
                     "terms.\n\n",
                     times);
  auto table = [&](const std::vector<std::vector<std::string>>& rows) {
    return markdown ? detail::markdown_table(rows) : detail::text_table(rows);
  };
  if (!t.neurons.empty()) {
    out += fmt::format("Neurons a = f(z): Err = d{0}/da, Backprop Err = d{0}/dz (= Err{1}f'(z) where z feeds only a)\n{2}",
                       c, times, markdown ? "\n" : "");
    std::vector<std::vector<std::string>> rows = {
        {"neuron", "a", "Err", "terms: upstream" + std::string(times) + "local (consumer)", "f'(z)", "Backprop Err"}};
    for (const TraceNeuron& n : t.neurons) {
      std::vector<std::string> parts = parts_of(t.nodes[n.node]);
      if (parts.empty()) parts.push_back("(seed)");
      rows.push_back({name(n.node), num(n.value), num(n.err), fmt::format("{}", fmt::join(parts, " + ")),
                      num(n.derivative), num(n.bpe)});
    }
    out += table(rows) + "\n";
  }
  out += markdown ? "Nodes in backward order:\n\n" : "Nodes in backward order:\n";
  std::vector<std::vector<std::string>> rows = {
      {"node", "op", "value", "gradient", "terms: upstream" + std::string(times) + "local (consumer)"}};
  for (std::size_t id : t.backward_order) {
    const TraceNode& n = t.nodes[id];
    const std::string op = n.is_leaf ? "parameter" : detail::op_cell(n.op, markdown);
    if (n.is_root) {
      rows.push_back({name(id), op, num(n.value), num(n.grad), "(seed)"});
    } else if (const std::vector<std::string> parts = parts_of(n); parts.size() <= 1 || markdown) {
      rows.push_back({name(id), op, num(n.value), num(n.grad), parts.empty() ? "(unused)" : fmt::format("{}", fmt::join(parts, " + "))});
    } else {
      // Several consumers: one line per term, then their sum.
      for (std::size_t k = 0; k < parts.size(); ++k)
        rows.push_back({k == 0 ? name(id) : "", k == 0 ? op : "", k == 0 ? num(n.value) : "", k == 0 ? num(n.grad) : "",
                        (k == 0 ? "  " : "+ ") + parts[k]});
      rows.push_back({"", "", "", "", "= " + num(n.grad) + " (sum of " + std::to_string(parts.size()) + " terms)"});
    }
  }
  out += table(rows);
  return out;
}

}  // namespace

std::string ChainRuleTrace::to_text(TraceOptions options) const { return render(*this, options, false); }

std::string ChainRuleTrace::to_markdown(TraceOptions options) const { return render(*this, options, true); }

std::ostream& operator<<(std::ostream& os, const ChainRuleTrace& trace) { return os << trace.to_text(); }

}  // namespace chainrule
