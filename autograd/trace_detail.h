#pragma once
// Internal to autograd/trace.cpp and autograd/dot.cpp. Not part of the public API.
#include <string>
#include <vector>

#include "autograd/trace.h"

namespace chainrule::detail {

// The trace of `root`'s graph. Without a backward (root gradient 0) it throws if
// `require_backward`, and otherwise returns the graph with every gradient 0.
ChainRuleTrace build_trace(const Scalar& root, bool require_backward);

// A number as traces and pictures print it (significant digits, or fixed decimals); never "-0".
std::string format_number(double value, const TraceOptions& options);

// Tables; the first row is the header. Text: fixed-width columns. Markdown: a pipe table, with
// '|' in cells escaped.
std::string text_table(const std::vector<std::vector<std::string>>& rows);
std::string markdown_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace chainrule::detail
