// Chain-rule traces of Tensor backward passes: a detail::BackwardObserver records, for every node
// the engine runs, the gradient it received and what its rule sent to each input.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "autograd/anomaly.h"
#include "autograd/tensor_impl.h"
#include "autograd/trace.h"
#include "autograd/trace_detail.h"

namespace chainrule {

namespace detail {

std::string summarise(const Tensor& t, const TraceOptions& f) {
  if (!t.defined()) return "-";
  const std::vector<double> v = t.to_vector();
  auto num = [&](double x) { return format_number(x, f); };
  if (v.size() == 1) return num(v[0]);
  if (v.size() <= 4) {
    std::vector<std::string> s;
    for (double x : v) s.push_back(num(x));
    return fmt::format("[{}]", fmt::join(s, ", "));
  }
  // The range of the numbers, and how many NaNs beside it (std::min and max skip a NaN unless it
  // comes first, which hid the finite values or the NaNs).
  double sum = 0, lo = INFINITY, hi = -INFINITY;
  std::size_t nans = 0;
  for (double x : v) {
    sum += x;
    if (std::isnan(x)) {
      ++nans;
      continue;
    }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const std::string mean = num(sum / static_cast<double>(v.size()));
  if (nans == v.size()) return fmt::format("all {} NaN", nans);
  if (nans > 0) return fmt::format("mean {}, range [{}, {}] and {} NaN", mean, num(lo), num(hi), nans);
  return fmt::format("mean {}, range [{}, {}]", mean, num(lo), num(hi));
}

const void* node_key(const Tensor& tensor) {
  return tensor.impl()->grad_fn ? static_cast<const void*>(tensor.impl()->grad_fn.get())
                                : static_cast<const void*>(tensor.impl());
}

std::unordered_map<const void*, std::string> names_by_node(const std::vector<std::pair<std::string, Tensor>>& names) {
  std::unordered_map<const void*, std::string> out;
  for (const auto& [name, tensor] : names)
    if (tensor.defined()) out.emplace(node_key(tensor), name);
  return out;
}

}  // namespace detail

namespace {

using detail::Node;

// One node the sweep ran, as the observer saw it.
struct Ran {
  const Node* node;
  std::string op;
  Where where;
  Tensor grad;                                 // what it received
  struct Input {
    const Node* fn;                            // the input's op, or
    const detail::TensorImpl* leaf;            // the parameter, or neither (a constant)
    Tensor sent;                               // what the rule sent, in the input's shape
  };
  std::vector<Input> inputs;
};

class Recorder final : public detail::BackwardObserver {
 public:
  std::vector<Ran> ran;
  std::unordered_map<const detail::TensorImpl*, Tensor> leaves;  // each parameter, by its impl

  void on_node(const Node& node, const Tensor& grad, const std::vector<Tensor>& input_grads) override {
    NoGradGuard no_grad;  // the summing below must not be recorded by a create_graph sweep
    Ran r{&node, std::string(node.name), node.where, grad.detach(), {}};
    for (std::size_t i = 0; i < node.next.size(); ++i) {
      const detail::Edge& e = node.next[i];
      Tensor sent;
      if (e.defined() && i < input_grads.size() && input_grads[i].defined()) {
        // The engine sums a broadcast gradient back to the input's shape; so does the trace.
        sent = input_grads[i].shape() == e.shape() ? input_grads[i].detach() : sum_to(input_grads[i], e.shape()).detach();
        if (e.leaf) leaves.emplace(e.leaf.get(), Tensor(e.leaf));
      }
      r.inputs.push_back({e.fn.get(), e.leaf.get(), std::move(sent)});
    }
    ran.push_back(std::move(r));
  }
};

std::string short_where(const Where& where) {
  if (where.line() == 0) return "";
  return fmt::format("{}:{}", std::filesystem::path(where.file_name()).filename().string(), where.line());
}

std::string render(const TensorTrace& t, const TraceOptions& f, bool markdown) {
  auto name = [&](std::size_t id) {
    return markdown ? detail::code_span(t.nodes[id].name) : detail::one_line(t.nodes[id].name);
  };
  if (t.nodes.empty()) return "(an empty Tensor trace: made by trace_backward, not by hand)\n";
  std::string out;
  const TensorTraceNode& root = t.nodes.front();
  out += fmt::format("{0}Chain-rule trace of a Tensor backward from {1}{0} ({2}, value {3})\n{4}", markdown ? "**" : "",
                     name(0), root.shape.str(), detail::summarise(root.value, f),
                     markdown ? "\n" : "");
  out += fmt::format("A node's gradient is d(root)/d(node), the sum of what its consumers' backwards sent it; values "
                     "are shown for the root, the parameters and the ops' outputs named in the call; tensors "
                     "are summarised (all values up to 4, else mean and range).\n\n");
  std::vector<std::vector<std::string>> rows = {
      {"node", "op", "shape", "recorded at", "value", "gradient", "terms: sent by (consumer)"}};
  for (const TensorTraceNode& n : t.nodes) {
    const std::string where = short_where(n.where);
    const std::string op = detail::op_cell(n.op, markdown);
    const std::string value = n.value.defined() ? detail::summarise(n.value, f) : "";
    if (n.is_root) {
      rows.push_back({name(n.id), op, n.shape.str(), where, value, detail::summarise(n.grad, f), "(seed)"});
    } else if (n.terms.size() <= 1 || markdown) {
      std::vector<std::string> parts;
      for (const TensorTraceTerm& e : n.terms)
        parts.push_back(fmt::format("{} ({})", detail::summarise(e.contribution, f), name(e.consumer)));
      rows.push_back({name(n.id), op, n.shape.str(), where, value, detail::summarise(n.grad, f),
                      fmt::format("{}", fmt::join(parts, " + "))});
    } else {
      for (std::size_t k = 0; k < n.terms.size(); ++k) {
        const TensorTraceTerm& e = n.terms[k];
        const bool first = k == 0;
        rows.push_back({first ? name(n.id) : "", first ? op : "", first ? n.shape.str() : "", first ? where : "",
                        first ? value : "", first ? detail::summarise(n.grad, f) : "",
                        fmt::format("{}{} ({})", first ? "  " : "+ ", detail::summarise(e.contribution, f), name(e.consumer))});
      }
      rows.push_back({"", "", "", "", "", "", fmt::format("= {} (sum of {} terms)", detail::summarise(n.grad, f), n.terms.size())});
    }
  }
  return out + (markdown ? detail::markdown_table(rows) : detail::text_table(rows));
}

}  // namespace

TensorTrace trace_backward(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& names,
                           BackwardOptions options) {
  if (!root.defined()) throw std::invalid_argument("trace_backward: the tensor is undefined");
  if (!root.impl()->grad_fn)
    throw std::invalid_argument(fmt::format(
        "trace_backward: the tensor (shape {}) is not the result of a recorded op; there is no backward to trace",
        root.shape().str()));
  if (root.numel() != 1)
    throw std::invalid_argument(fmt::format(
        "trace_backward: the root has shape {} ({} elements); a trace starts from a one-element output "
        "such as a loss (trace sum(y) or mean(y) to follow every element of y)",
        root.shape().str(), root.numel()));
  Recorder recorder;
  {
    detail::BackwardObserver* previous = detail::BackwardObserver::current;
    detail::BackwardObserver::current = &recorder;
    try {
      root.backward(options);
    } catch (...) {
      detail::BackwardObserver::current = previous;
      throw;
    }
    detail::BackwardObserver::current = previous;
  }
  NoGradGuard no_grad;

  // Ids: ops in the order they ran (root first), each parameter right after its first consumer.
  // Names are unique, so that a term's "(consumer)" and node(name) name one node: a name the
  // caller gave (to a parameter, or to an op's output) is kept, and an op's own name or
  // "parameter#k" that would repeat one is numbered on.
  std::unordered_map<const void*, std::size_t> id;
  const std::unordered_map<const void*, std::string> given = detail::names_by_node(names);
  // The values of the ops' outputs the caller named (the graph keeps no op's output; these tensors
  // are the caller's).
  std::unordered_map<const void*, Tensor> named_values;
  for (const auto& [name, tensor] : names)
    if (tensor.defined() && tensor.impl()->grad_fn) named_values.emplace(detail::node_key(tensor), tensor.detach());
  std::unordered_set<std::string> used;
  for (const auto& [key, name] : given) used.insert(name);
  // Ops that share a name are numbered in the order they were recorded (linear#1 is the first
  // layer), not the order the backward ran them.
  std::unordered_map<std::string, std::vector<const Node*>> by_op;
  for (const Ran& r : recorder.ran) by_op[r.op].push_back(r.node);
  std::unordered_map<const Node*, std::size_t> number;  // 0 (none) for an op alone of its name
  for (auto& [op, list] : by_op) {
    std::sort(list.begin(), list.end(), [](const Node* a, const Node* b) { return a->sequence < b->sequence; });
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (std::size_t k = 0; list.size() > 1 && k < list.size(); ++k) number[list[k]] = k + 1;
  }
  std::unordered_map<std::string, std::size_t> extra;  // numbers past the ops', for names taken
  std::unordered_set<std::string> assigned;  // given names already on a node
  auto name_of = [&](const void* key, const std::string& base, std::size_t k) {
    if (auto it = given.find(key); it != given.end()) {
      std::string name = it->second;
      for (std::size_t j = 2; !assigned.insert(name).second; ++j) name = fmt::format("{}#{}", it->second, j);
      used.insert(name);
      return name;
    }
    std::string name = k > 0 ? fmt::format("{}#{}", base, k) : base;
    const std::size_t taken = by_op.count(base) && by_op[base].size() > 1 ? by_op[base].size() : 0;
    while (used.count(name)) name = fmt::format("{}#{}", base, taken + ++extra[base]);
    used.insert(name);
    return name;
  };
  std::unordered_map<std::string, std::size_t> leaves;  // "parameter#k", "input#k"
  TensorTrace t;
  auto add = [&](TensorTraceNode node, const void* key) {
    node.id = t.nodes.size();
    id[key] = node.id;
    t.nodes.push_back(std::move(node));
  };
  for (const Ran& r : recorder.ran) {
    if (!id.count(r.node)) {
      TensorTraceNode n;
      n.op = r.op;
      n.name = name_of(r.node, r.op, number[r.node]);
      n.where = r.where;
      n.grad = r.grad;
      n.shape = r.grad.shape();
      n.is_root = t.nodes.empty();
      if (n.is_root) n.value = root.detach();
      else if (auto it = named_values.find(r.node); it != named_values.end()) n.value = it->second;
      add(std::move(n), r.node);
    }
    for (const Ran::Input& in : r.inputs) {
      if (!in.leaf || !in.sent.defined() || id.count(in.leaf)) continue;
      const Tensor& leaf = recorder.leaves.at(in.leaf);
      TensorTraceNode n;
      // A leaf whose requires_grad was turned off after the graph was recorded takes nothing from
      // the sweep (as the engine gives it nothing): an input, with no gradient.
      n.op = leaf.requires_grad() ? "parameter" : "input";
      n.name = name_of(in.leaf, n.op, ++leaves[n.op]);
      n.shape = in.sent.shape();
      n.value = leaf.detach();
      n.is_leaf = true;
      add(std::move(n), in.leaf);
    }
  }
  // Terms, and the parameters' gradients as the sum of theirs.
  for (const Ran& r : recorder.ran) {
    const std::size_t consumer = id.at(r.node);
    for (std::size_t i = 0; i < r.inputs.size(); ++i) {
      const Ran::Input& in = r.inputs[i];
      if (!in.sent.defined()) continue;
      const void* key = in.fn ? static_cast<const void*>(in.fn) : static_cast<const void*>(in.leaf);
      auto it = id.find(key);
      if (it == id.end()) continue;  // an op that did not run (nothing it leads to needed a gradient)
      TensorTraceNode& target = t.nodes[it->second];
      if (target.op == "input") continue;
      target.terms.push_back({consumer, i, in.sent});
      if (target.is_leaf) target.grad = target.grad.defined() ? target.grad + in.sent : in.sent;
    }
  }
  return t;
}

const TensorTraceNode& TensorTrace::node(std::string_view name) const {
  return detail::node_named(nodes, name, "TensorTrace::node");
}

std::string TensorTrace::to_text(TraceOptions options) const { return render(*this, options, false); }

std::string TensorTrace::to_markdown(TraceOptions options) const { return render(*this, options, true); }

std::ostream& operator<<(std::ostream& os, const TensorTrace& trace) { return os << trace.to_text(); }

}  // namespace chainrule
