#pragma once
// Internal: UTF-8 validation (the DOT writer; nn's safetensors reader and writer).
#include <cstddef>
#include <string>
#include <string_view>

namespace chainrule::detail {

// Length of the valid UTF-8 sequence starting at s[i] (1 to 4), or 0 if it is invalid: truncated,
// overlong, a surrogate, or above U+10FFFF. Requires i < s.size().
std::size_t utf8_sequence(std::string_view s, std::size_t i);

// Whether all of `s` is valid UTF-8.
bool valid_utf8(std::string_view s);

// `s` with every byte that does not start a valid sequence replaced by U+FFFD.
std::string valid_utf8_or_replaced(std::string_view s);

}  // namespace chainrule::detail
