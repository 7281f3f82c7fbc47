#pragma once
// Internal to autograd/trace.cpp, trace_tensor.cpp and dot.cpp. Not part of the public API.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autograd/trace.h"

namespace chainrule::detail {

// The trace of `root`'s graph. Without a backward (root gradient 0) it throws if
// `require_backward`, and otherwise returns the graph with every gradient 0.
ChainRuleTrace build_trace(const Scalar& root, bool require_backward);

// Did the backward whose gradients root's graph holds start at root? (ScalarTape::backward_started_at)
bool backward_started_at(const Scalar& root);

// A number as traces and pictures print it (significant digits, or fixed decimals); never "-0".
std::string format_number(double value, const TraceOptions& options);

// A tensor's values in a few characters: all of them up to 4, else mean and range; "-" when
// undefined.
std::string summarise(const Tensor& t, const TraceOptions& options);

// What a Tensor graph shows for a (defined) tensor: the op node that produced it, or a leaf's
// TensorImpl.
const void* node_key(const Tensor& tensor);
// Names given to tensors (a trace's or a picture's `names`), by node_key. The first name of each
// wins.
std::unordered_map<const void*, std::string> names_by_node(const std::vector<std::pair<std::string, Tensor>>& names);

// The node called `name` of a trace (`who` names the lookup in the error), or std::out_of_range
// listing the names there are.
template <class Node>
const Node& node_named(const std::vector<Node>& nodes, std::string_view name, std::string_view who) {
  for (const Node& n : nodes)
    if (n.name == name) return n;
  std::vector<std::string> known;
  for (const Node& n : nodes) known.push_back(n.name);
  throw std::out_of_range(
      fmt::format("{}: no node named '{}'; the nodes are: {}", who, name, fmt::join(known, ", ")));
}

// Tables; the first row is the header. Text: fixed-width columns. Markdown: a pipe table, with
// '|' in cells escaped.
std::string text_table(const std::vector<std::vector<std::string>>& rows);
std::string markdown_table(const std::vector<std::vector<std::string>>& rows);
// Control characters (line breaks, NUL, DEL): labels are user text, and these would break a table
// row, a Markdown cell or a DOT string.
inline bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }
// A node's name on one line: line breaks and other control characters in a label become spaces.
std::string one_line(std::string s);
// Markdown: `s` (on one line) as a code span whose fence is longer than any run of backticks in
// it (CommonMark), so a label holding `` stays one span.
std::string code_span(const std::string& s);
// Markdown: `s` (on one line) as plain text, its characters with a meaning (emphasis, links, HTML,
// entities, code) backslash-escaped; '|' is left to the table's cells.
std::string markdown_text(const std::string& s);
// Text or Markdown: an op's name in a table cell (custom ops are named by the user).
inline std::string op_cell(const std::string& op, bool markdown) { return markdown ? markdown_text(op) : one_line(op); }

}  // namespace chainrule::detail
