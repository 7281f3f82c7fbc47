// Reading and writing the safetensors format (https://github.com/huggingface/safetensors), the
// tensor file format of the Hugging Face ecosystem. Independent of the Tensor type: an entry holds
// raw little-endian bytes, and make_st_entry / st_values_f32 / st_values_f64 convert to and from
// numbers.
//
//   using namespace chainrule::nn;
//   StFile f;
//   std::vector<float> w = {1, 2, 3, 4, 5, 6};
//   f.tensors.push_back(make_st_entry("dense.weight", {2, 3}, w));
//   f.metadata["format"] = "pt";
//   save_safetensors("model.safetensors", f);
//   StFile g = load_safetensors("model.safetensors");       // g == f
//   std::vector<float> back = st_values_f32(g.tensors[0]);   // {1, 2, 3, 4, 5, 6}
//
// File layout (every integer little-endian):
//
//   bytes [0, 8)        N, an unsigned 64-bit integer: the size of the header
//   bytes [8, 8+N)      the header: a UTF-8 JSON object (below)
//   bytes [8+N, end)    the data buffer: every tensor's elements, row-major (C order), packed
//
// The header maps each tensor name to its dtype, its shape and its byte range [begin, end) in the
// data buffer (offsets counted from the buffer's first byte, not the file's). The optional key
// "__metadata__" holds a string-to-string map:
//
//   {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}
//
// A tensor of shape [d0, ..., dk-1] whose dtype takes s bytes (F32: 4, F64: 8) occupies exactly
// s * d0 * ... * dk-1 bytes, so end - begin must equal that product. Shape [] is a scalar (one
// element); a shape containing 0 holds no element and no byte (begin == end).
//
// What encode_safetensors writes (deterministic: equal StFiles give equal bytes):
//   - compact JSON with no spaces; "__metadata__" first, omitted when the map is empty, its keys
//     sorted; each tensor's fields in the order dtype, shape, data_offsets;
//   - tensors ordered by element size, largest first, then by name (byte-wise); the data buffer
//     follows the same order. This is what the reference implementation (and so the Python
//     library) writes: with the header padded as below, every tensor starts at a file offset
//     that is a multiple of its element size, so a reader can map the file and cast in place;
//   - the header padded with spaces (0x20) so that 8 + N is a multiple of 8.
//
// What decode_safetensors accepts, and rejects with an exception naming the problem:
//   - at least 8 bytes; N at most 100,000,000 (the reference implementation's limit) and at most
//     the bytes that follow the prefix;
//   - a header that starts with '{' and is exactly one JSON object, with JSON whitespace allowed
//     between tokens and after the object (the padding). Strict JSON: strings must be valid UTF-8
//     and may use every JSON escape (\uXXXX with surrogate pairs included); numbers must be
//     non-negative integers below 2^64 without sign, fraction, exponent or leading zeros;
//   - no duplicate key at any level, comparing decoded strings ("a" and "\u0061" are the same key);
//   - "__metadata__": an object whose values are all strings;
//   - every other key is a non-empty tensor name whose value has exactly the keys "dtype",
//     "shape" (integers, each at most 2^63 - 1) and "data_offsets" ([begin, end], begin <= end);
//   - dtype F32, F64 or I64 (I64 for the integer counters torch keeps in state dicts, such as
//     BatchNorm's num_batches_tracked; other safetensors dtypes such as F16 or BF16 are refused by
//     name);
//   - end - begin == element size * product of the shape, computed without overflow;
//   - the ranges, sorted, tile the data buffer exactly: the first begins at 0, each begins where
//     the previous ends (no overlap, no hole), the last ends at the end of the file. A range
//     past the end reports the file as truncated, with the expected and the actual file size.
// Keys may appear in any order. The returned tensors are in data-buffer order (for a file
// written by encode_safetensors: encode's order); entry data is copied out of the input.
//
// Errors: std::invalid_argument for an StFile that cannot be written (from encode and save),
// std::runtime_error for a malformed file or an I/O failure. Messages start with the function
// and, when there is one, the file ("load_safetensors: model.safetensors: truncated: expected 112
// bytes, got 100 (...)"); tensor names in messages are quoted and JSON-escaped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chainrule::nn {

// Element types chainrule reads and writes. In the file: "F32" (IEEE-754 binary32), "F64"
// (binary64) and "I64" (two's complement 64-bit integers).
enum class StDType { F32, F64, I64 };

// Bytes per element: 4 for F32, 8 for F64 and I64.
std::size_t st_dtype_size(StDType dtype);
// The name used in the header: "F32", "F64" or "I64".
std::string_view st_dtype_name(StDType dtype);
// The dtype a header names, or nothing for any other name.
std::optional<StDType> st_dtype_named(std::string_view name);

// One named tensor. `data` holds its elements row-major, each in little-endian byte order;
// data.size() must equal st_dtype_size(dtype) * product(shape) (product of [] is 1).
struct StEntry {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;

  friend bool operator==(const StEntry&, const StEntry&) = default;
};

// The contents of one safetensors file: tensors (names unique, non-empty, not "__metadata__")
// and the free-form string metadata stored under "__metadata__".
struct StFile {
  std::vector<StEntry> tensors;
  std::map<std::string, std::string> metadata;

  friend bool operator==(const StFile&, const StFile&) = default;
};

// An entry of dtype F32 (F64 for the double overload, I64 for the integer one) holding `values`,
// row-major.
// Throws std::invalid_argument if a dimension is negative or if values.size() differs from the
// shape's element count: make_st_entry("w", {2, 3}, six_floats).
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const float> values);
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const double> values);
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const std::int64_t> values);

// The elements of an F32 (F64, I64) entry, row-major. Throws std::invalid_argument naming the entry
// if its dtype is another one or its data size is not a whole number of elements.
std::vector<float> st_values_f32(const StEntry& entry);
std::vector<double> st_values_f64(const StEntry& entry);
std::vector<std::int64_t> st_values_i64(const StEntry& entry);

// The bytes of a safetensors file holding `file` (layout above). Throws std::invalid_argument,
// naming the tensor, for an empty, reserved, duplicate or non-UTF-8 name, a negative dimension,
// data whose size does not match dtype and shape, non-UTF-8 metadata, or a header over 100 MB.
std::vector<std::byte> encode_safetensors(const StFile& file);

// Parses and validates a whole safetensors file held in memory (rules above). `what` names the
// source in error messages. Throws std::runtime_error; never reads outside `bytes`.
StFile decode_safetensors(std::span<const std::byte> bytes, std::string_view what = "<memory>");

// Writes `file` to `path` atomically: the bytes go to a new temporary file in the same directory
// (".<name>.tmp.<pid>.<n>"), which is flushed to disk (fsync) and then renamed over `path`, and
// the directory is synced. Readers see the old file or the new one, never a mix. On any failure
// the temporary file is removed, `path` is left as it was, and std::runtime_error names the path
// and the system error. (A process killed mid-save leaves its temporary file behind; the target
// is still intact.) A symlink at `path` is replaced, not followed; a FIFO, socket or device node
// there is refused (std::runtime_error), not replaced. POSIX only.
void save_safetensors(const std::filesystem::path& path, const StFile& file);

// Reads and decodes the file at `path` (decode_safetensors' rules). The prefix and the header are
// read and checked against the file's size first, and the data only then, so a corrupt or
// foreign file (even a huge or sparse one) is refused after reading at most 8 + 100,000,000
// bytes. Throws std::runtime_error naming the path if it is not a regular file, cannot be opened
// or read, is malformed, or its data does not fit in memory.
StFile load_safetensors(const std::filesystem::path& path);

namespace detail {
// Test hook. Runs save_safetensors' own code with a failure injected: after writing
// min(bytes_before_failure, size of the file) bytes of the temporary file, the write throws
// std::runtime_error as a full disk would, before any fsync or rename. Used to prove that an
// interrupted save leaves the previous file untouched and no temporary file behind.
void save_safetensors_interrupted_for_test(const std::filesystem::path& path, const StFile& file,
                                           std::size_t bytes_before_failure);
}  // namespace detail

}  // namespace chainrule::nn
