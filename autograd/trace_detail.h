#pragma once
// Internal to autograd/trace.cpp and autograd/dot.cpp. Not part of the public API.
#include <string>

#include "autograd/trace.h"

namespace chainrule::detail {

// The trace of `root`'s graph. Without a backward (root gradient 0) it throws if
// `require_backward`, and otherwise returns the graph with every gradient 0.
ChainRuleTrace build_trace(const Scalar& root, bool require_backward);

// A number as traces and pictures print it (significant digits, or fixed decimals); never "-0".
std::string format_number(double value, const TraceOptions& options);

}  // namespace chainrule::detail
