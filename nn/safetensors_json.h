// The JSON side of the safetensors format: the header's grammar, read strictly, and the string
// escaping the writer uses. Internal to nn/safetensors*.cpp and nn/serialize.cpp (namespace
// detail): the public API is nn/safetensors.h, which documents the rules enforced here.
//
// The header is one JSON object (layout in nn/safetensors.h):
//
//   {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}
//
// parse_st_header checks its syntax and structure only: strict JSON (valid UTF-8, every escape
// including surrogate pairs, non-negative integers below 2^64 without sign, fraction, exponent or
// leading zeros), no duplicate key at any level, "__metadata__" an object of strings, every other
// value an object with exactly "dtype" (a string), "shape" (integers) and "data_offsets" (two
// integers), and nothing after the object but JSON whitespace. What the numbers mean (dtype names,
// sizes, ranges against the file) is checked by decode_safetensors.
//
//   StHeader h = parse_st_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
//                                "decode_safetensors", "model.safetensors");
//   // h.tensors[0].name == "w", h.tensors[0].shape == {2}, h.tensors[0].offsets == {0, 8}
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/utf8.h"

namespace chainrule::nn::detail {

// One tensor's entry as written in the header, before its values are checked: `dtype` is the
// name as written ("F32", or anything else), `offsets` has exactly two elements.
struct StHeaderTensor {
  std::string name, dtype;
  std::vector<std::uint64_t> shape, offsets;
};

// The parsed header: tensors in the order they appear, and the "__metadata__" map (empty when
// the key is absent).
struct StHeader {
  std::vector<StHeaderTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses the header text (the N bytes after the length prefix, padding included). Throws
// std::runtime_error "<fn>: <what>: bad JSON header at byte <i> of <N> (file offset <i+8>): <why>".
StHeader parse_st_header(std::string_view text, std::string_view fn, std::string_view what);

// UTF-8 validation (autograd/utf8.h).
using chainrule::detail::utf8_sequence;
using chainrule::detail::valid_utf8;

// Appends `s` to `out` as a JSON string, quoted and escaped exactly as serde_json (the reference
// implementation) does: \" \\ \b \f \n \r \t, other control characters as \u00XX, the rest as is.
//   put_json_string(out, "a\"b");   // appends "a\"b" with the quote escaped
void put_json_string(std::string& out, std::string_view s);

// A name as error messages show it: JSON-quoted and escaped (a hostile file's names may hold
// control characters), cut to 80 bytes with "..." after if longer. shown("0.weight") is
// "\"0.weight\"".
std::string shown(std::string_view s);

// A shape as error messages show it: "[2, 3]"; past 8 dimensions the first 8 and how many there
// are (a file's shape may list a million), "[1, 1, 1, 1, 1, 1, 1, 1, ... (500000 dims)]".
std::string shape_shown(std::span<const std::int64_t> shape);
std::string shape_shown(std::span<const std::uint64_t> shape);

}  // namespace chainrule::nn::detail
