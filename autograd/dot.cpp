// DOT export of Scalar and Tensor graphs. Nodes are written in creation (or recording) order, so
// the same graph always gives the same text.
#include "autograd/dot.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "autograd/anomaly.h"
#include "autograd/tensor_impl.h"
#include "autograd/text_file.h"
#include "autograd/trace_detail.h"
#include "autograd/utf8.h"

namespace chainrule {

namespace {

// The three kinds of nodes and the output, told apart by shape and colour.
constexpr const char* kParameter = R"(shape=box, style="rounded,filled", fillcolor="#dbeafe", color="#1d4ed8")";
constexpr const char* kConstant = R"(shape=ellipse, style=filled, fillcolor="#eeeeee", color="#9ca3af", fontcolor="#374151")";
constexpr const char* kOp = R"(shape=box, style=filled, fillcolor="#ffffff", color="#111827")";
constexpr const char* kOutput = R"(shape=box, style="filled,bold", fillcolor="#ffedd5", color="#c2410c", peripheries=2)";
constexpr const char* kNoGradient = R"(style=dashed, color="#9ca3af", fontcolor="#6b7280")";

void check_rankdir(const std::string& rankdir) {
  if (rankdir != "LR" && rankdir != "TB" && rankdir != "RL" && rankdir != "BT")
    throw std::invalid_argument(fmt::format("to_dot: DotOptions::rankdir must be LR, TB, RL or BT, got '{}'", rankdir));
}

std::string header(const DotOptions& options) {
  check_rankdir(options.rankdir);
  return fmt::format("digraph chainrule {{\n  rankdir={};\n  node [fontname=\"Helvetica\", fontsize=11];\n"
                     "  edge [fontname=\"Helvetica\", fontsize=9];\n",
                     options.rankdir);
}

std::string footer(const DotOptions& options, const std::string& legend) {
  std::string caption = options.title;
  if (options.legend) caption += (caption.empty() ? "" : "\n") + legend;
  std::string out;
  if (!caption.empty()) out += fmt::format("  labelloc=b;\n  fontname=\"Helvetica\";\n  fontsize=10;\n  label={};\n", dot_quote(caption));
  return out + "}\n";
}

std::string lines(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& p : parts) joined += (joined.empty() ? "" : "\n") + p;
  return dot_quote(joined);
}

}  // namespace

std::string dot_quote(const std::string& text) {
  // Graphviz reads a quoted string of at most 16,384 bytes (a longer label is a syntax error), and
  // warns on bytes that are not UTF-8: a label is cut to kMaxLabel bytes (at a character's start)
  // and its invalid bytes replaced.
  constexpr std::size_t kMaxLabel = 2000;
  std::string shown = detail::valid_utf8_or_replaced(text);
  if (shown.size() > kMaxLabel) {
    std::size_t cut = kMaxLabel;
    while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) --cut;
    shown = shown.substr(0, cut) + "...";
  }
  std::string out = "\"";
  for (char c : shown) {
    // An entity (&amp;) would be decoded: the text is shown as it is.
    if (c == '&') {
      out += "&amp;";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    // Other control characters (a NUL ends a DOT string for Graphviz): shown as a space.
    if (detail::is_control(c)) c = ' ';
    out += c;
  }
  return out + "\"";
}

std::string to_dot(const Scalar& root, const DotOptions& options) {
  std::string out = header(options);
  const std::vector<ScalarNodeView> view = graph_view(root);
  const ChainRuleTrace t = detail::build_trace(root, false);
  const TraceOptions f{options.digits, options.fixed};
  auto num = [&](double x) { return detail::format_number(x, f); };
  const bool has_gradients = t.reached;
  // A leaf that does not require grad enters the tape as a new constant at every use; its uses are
  // drawn as one node (same label, same value), as the input they are.
  std::vector<std::size_t> node_of(view.size());
  std::unordered_map<std::string, std::size_t> named_constant;
  for (const ScalarNodeView& n : view) {
    node_of[n.id] = n.id;
    if (n.is_constant && !n.label.empty())
      node_of[n.id] = named_constant.emplace(fmt::format("{}={}", n.label, n.value), n.id).first->second;
  }
  // The lecture's names for a neuron's gradients: Err at its output, Backprop Err at its input.
  std::vector<const char*> gradient_name(view.size(), "grad");
  for (const TraceNeuron& neuron : t.neurons) {
    gradient_name[neuron.node] = "Err";
    gradient_name[neuron.input] = "BPE";
  }
  for (const ScalarNodeView& n : view) {
    if (node_of[n.id] != n.id) continue;
    const std::string& name = t.nodes[n.id].name;
    std::vector<std::string> label;
    const char* style = kOp;
    if (n.is_constant) {
      style = kConstant;
      label.push_back(n.label.empty() ? num(n.value) : fmt::format("{} = {}", n.label, num(n.value)));
    } else {
      label.push_back(name);
      if (n.is_leaf) style = kParameter;
      else if (name != n.op && !name.starts_with(n.op + "#")) label.push_back(n.op);
      if (n.id + 1 == view.size()) style = kOutput;
      label.push_back("value " + num(n.value));
      if (has_gradients) label.push_back(fmt::format("{} {}", gradient_name[n.id], num(t.nodes[n.id].grad)));
      if (options.show_where && !n.is_leaf && n.where.line() != 0) label.push_back(to_string(n.where));
    }
    out += fmt::format("  n{} [label={}, {}];\n", n.id, lines(label), style);
  }
  for (const ScalarNodeView& n : view)
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const std::size_t j = n.inputs[k];
      const double local = k < n.local.size() ? n.local[k] : 0.0;
      out += fmt::format("  n{} -> n{} [label={}{}];\n", node_of[j], n.id, dot_quote(num(local)),
                         view[j].is_constant ? std::string(", ") + kNoGradient : "");
    }
  return out + footer(options,
                      std::string("blue: parameters; grey: inputs and constants (no gradient); orange: output\n"
                                  "edge label: local derivative d(consumer)/d(input); grad = sum over out-edges of "
                                  "consumer grad x label") +
                          (t.from_root ? "" : "\n(+ what paths to the output the backward started at that avoid this "
                                              "graph sent: it did not start here)") +
                          "\nneurons a = f(z): Err = grad of a, BPE (backprop error) = grad of z");
}

std::string to_dot(const Tensor& root, const DotOptions& options) {
  if (!root.defined()) throw std::invalid_argument("to_dot: the tensor is undefined");
  std::string out = header(options);
  const TraceOptions f{options.digits, options.fixed};
  const std::unordered_map<const void*, std::string> names = detail::names_by_node(options.names);
  // A parameter's box says it is one (a parameter may be named like an op: "sum"), and shows its
  // .grad as accumulated (every backward since zero_grad, from whichever output), not a gradient of
  // this root: the Tensor graph keeps no per-node gradients (trace_backward records them).
  auto leaf_label = [&](const Tensor& t, const char* kind) {
    std::vector<std::string> label;
    if (auto it = names.find(t.impl()); it != names.end()) label.push_back(it->second);
    label.push_back(kind);
    label.push_back(t.shape().str());
    label.push_back("value " + detail::summarise(t, f));
    if (t.grad().defined()) label.push_back(".grad " + detail::summarise(t.grad(), f));
    return lines(label);
  };
  using detail::Node;
  Node* top = root.impl()->grad_fn.get();
  if (!top) {
    out += fmt::format("  n0 [label={}, {}];\n", leaf_label(root, root.requires_grad() ? "parameter" : "constant"),
                       root.requires_grad() ? kOutput : kConstant);
    return out + footer(options, "a leaf: no recorded op");
  }
  // The recorded ops, in recording order (explicit stack: graphs can be deep).
  std::vector<Node*> nodes, stack = {top};
  std::unordered_set<Node*> seen = {top};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    for (const detail::Edge& e : n->next)
      if (Node* m = e.fn.get(); m && seen.insert(m).second) stack.push_back(m);
  }
  std::sort(nodes.begin(), nodes.end(), [](const Node* a, const Node* b) { return a->sequence < b->sequence; });
  std::unordered_map<const Node*, std::size_t> id;
  for (std::size_t i = 0; i < nodes.size(); ++i) id[nodes[i]] = i;
  // An op's output values are what its consumers kept for replay.
  std::unordered_map<const Node*, Tensor> value = {{top, root}};
  for (const Node* n : nodes)
    for (std::size_t i = 0; i < n->next.size(); ++i)
      if (const Node* m = n->next[i].fn.get())
        if (i < n->replay_inputs().size() && n->replay_inputs()[i].defined()) value.emplace(m, n->replay_inputs()[i]);
  for (const Node* n : nodes) {
    std::vector<std::string> label;
    if (auto it = names.find(n); it != names.end()) label.push_back(it->second);
    label.push_back(std::string(n->name));
    label.push_back(n->shape.str());
    if (auto it = value.find(n); it != value.end()) label.push_back("value " + detail::summarise(it->second, f));
    if (options.show_where) label.push_back(to_string(n->where));
    out += fmt::format("  n{} [label={}, {}];\n", id[n], lines(label), n == top ? kOutput : kOp);
  }
  std::unordered_map<const detail::TensorImpl*, std::string> leaves;
  std::size_t constants = 0;
  for (const Node* n : nodes)
    for (std::size_t i = 0; i < n->next.size(); ++i) {
      const detail::Edge& e = n->next[i];
      const std::string edge_label = dot_quote(e.shape().str());
      if (e.fn) {
        out += fmt::format("  n{} -> n{} [label={}];\n", id[e.fn.get()], id[n], edge_label);
      } else if (e.leaf) {
        auto [it, added] = leaves.emplace(e.leaf.get(), fmt::format("p{}", leaves.size()));
        const Tensor leaf(e.leaf);
        if (added)
          out += fmt::format("  {} [label={}, {}];\n", it->second,
                             leaf_label(leaf, leaf.requires_grad() ? "parameter" : "input (requires_grad off)"),
                             leaf.requires_grad() ? kParameter : kConstant);
        out += fmt::format("  {} -> n{} [label={}];\n", it->second, id[n], edge_label);
      } else {
        // An input that does not require grad: the edge keeps only its shape (and its value when
        // the graph was recorded for replay).
        std::vector<std::string> label = {"constant", e.shape().str()};
        if (i < n->replay_inputs().size() && n->replay_inputs()[i].defined())
          label.push_back("value " + detail::summarise(n->replay_inputs()[i], f));
        out += fmt::format("  c{} [label={}, {}];\n", constants, lines(label), kConstant);
        out += fmt::format("  c{} -> n{} [label={}, {}];\n", constants++, id[n], edge_label, kNoGradient);
      }
    }
  return out + footer(options,
                      "boxes: recorded ops with their output shape; blue: parameters; grey: constants (no "
                      "gradient); orange: output\nedge label: the shape of the tensor that flows; .grad: a "
                      "parameter's accumulated gradient (every backward since zero_grad)");
}

void write_dot(const std::filesystem::path& path, const Scalar& root, const DotOptions& options) {
  detail::write_text_file(path, to_dot(root, options), "write_dot");
}
void write_dot(const std::filesystem::path& path, const Tensor& root, const DotOptions& options) {
  detail::write_text_file(path, to_dot(root, options), "write_dot");
}

}  // namespace chainrule
