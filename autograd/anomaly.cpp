#include "autograd/anomaly.h"

#include <fmt/format.h>

#include <cmath>
#include <string_view>

namespace chainrule {

std::string to_string(const Where& where) {
  std::string_view file = where.file_name();
  if (file.empty()) return "<unknown location>";
  return fmt::format("{}:{}", file, where.line());
}

namespace detail {

void throw_anomaly(const char* phase, std::string_view op, const Where& where, double value,
                   const std::string& detail) {
  const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "inf" : "-inf");
  throw AnomalyError(fmt::format("anomaly: the {} of '{}' (recorded at {}) produced {}{}{}", phase, op,
                                 to_string(where), what, detail.empty() ? "" : ": ", detail));
}

void rethrow_in_backward(std::string_view op, const Where& where, const AnomalyError& inner) {
  constexpr std::string_view prefix = "anomaly: ";
  std::string_view what = inner.what();
  if (what.starts_with("anomaly: the backward of ")) throw inner;
  if (what.starts_with(prefix)) what.remove_prefix(prefix.size());
  throw AnomalyError(fmt::format("anomaly: the backward of '{}' (recorded at {}) produced a non-finite value: inside it, {}",
                                 op, to_string(where), what));
}

}  // namespace detail
}  // namespace chainrule
