#pragma once
// Internal to nn/safetensors.cpp (the format) and nn/safetensors_file.cpp (files): the decoding
// steps that load_safetensors interleaves with its reads. In three steps, so that a file's header
// is checked against its size before the data is read (or allocated): a 1 TB file whose header
// describes 1 KB is refused at once.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nn/safetensors.h"
#include "nn/safetensors_json.h"

namespace chainrule::nn::detail {

// std::runtime_error "fn: what: msg".
[[noreturn]] void malformed(std::string_view fn, std::string_view what, const std::string& msg);

// The header length N from the first min(8, size) bytes of a file of `size` bytes, checked
// against the limit and the size.
std::uint64_t header_length(std::span<const std::byte> prefix, std::uint64_t size, std::string_view fn,
                            std::string_view what);

struct Range {
  std::uint64_t begin, end;
  std::size_t index;  // into Layout::header.tensors
};

// A header checked against itself and against a file of `size` bytes: once this exists, the data
// buffer (the last size - 8 - N bytes) is exactly tiled by `ranges`.
struct Layout {
  StHeader header;
  std::vector<StDType> dtypes;  // per header tensor
  std::vector<Range> ranges;    // sorted by position in the data buffer
};
Layout check_layout(std::string_view header_text, std::uint64_t size, std::string_view fn, std::string_view what);

// The StFile of a checked layout; `data` is its data buffer (the bytes after the header).
StFile build_file(Layout&& layout, const std::byte* data);

inline std::string_view header_text(const std::byte* at, std::uint64_t n) {
  return {reinterpret_cast<const char*>(at), n};
}

}  // namespace chainrule::nn::detail
