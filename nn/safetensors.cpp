// The safetensors format: entries, encoding, and decoding checked against the bytes; reading and
// writing files is nn/safetensors_file.cpp.
#include "nn/safetensors.h"

#include "nn/safetensors_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>
#include <type_traits>

namespace chainrule::nn {
namespace {

using detail::put_json_string;
using detail::shape_shown;
using detail::shown;
using detail::valid_utf8;

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit
constexpr std::uint64_t kMaxDim = std::numeric_limits<std::int64_t>::max();

// element_size * product(shape), or nothing if that overflows 64 bits. Dimensions are >= 0.
template <typename Int>
std::optional<std::uint64_t> byte_size(const std::vector<Int>& shape, std::uint64_t element_size) {
  for (Int d : shape)
    if (d == 0) return 0;  // [2^62, 0] holds no bytes, however large its other dims
  std::uint64_t n = element_size;
  for (Int d : shape)
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
  return n;
}

std::string maybe_huge(std::optional<std::uint64_t> n) { return n ? fmt::format("{}", *n) : "over 2^64"; }

// The file is little-endian; a big-endian host swaps each element.
void to_little_endian(std::vector<std::byte>& data, std::size_t element_size) {
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i + element_size <= data.size(); i += element_size)
      std::reverse(data.begin() + i, data.begin() + i + element_size);
}

template <typename T>
constexpr StDType st_dtype_of = std::is_same_v<T, float> ? StDType::F32 : std::is_same_v<T, double> ? StDType::F64 : StDType::I64;

template <typename T>
StEntry make_entry(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
  const auto fail = [&](std::string_view why) {
    throw std::invalid_argument(fmt::format("make_st_entry: {}: shape {} {}", shown(name), shape_shown(shape), why));
  };
  if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; })) fail("has a negative dimension");
  const auto bytes = byte_size(shape, sizeof(T));
  if (!bytes || *bytes != values.size() * sizeof(T)) fail(fmt::format("does not hold {} values", values.size()));
  StEntry e{std::move(name), st_dtype_of<T>, std::move(shape), {}};
  e.data.resize(*bytes);
  if (!e.data.empty()) std::memcpy(e.data.data(), values.data(), e.data.size());  // memcpy(null, ..., 0) is UB
  to_little_endian(e.data, sizeof(T));
  return e;
}

template <typename T>
std::vector<T> values_of(const StEntry& e, StDType want) {
  if (e.dtype != want || e.data.size() % sizeof(T) != 0)
    throw std::invalid_argument(fmt::format("st_values_{}: tensor {} has dtype {} and {} bytes of data",
                                            want == StDType::F32 ? "f32" : want == StDType::F64 ? "f64" : "i64",
                                            shown(e.name), st_dtype_name(e.dtype),
                                            e.data.size()));
  std::vector<std::byte> raw = e.data;
  to_little_endian(raw, sizeof(T));  // the swap is its own inverse
  std::vector<T> out(raw.size() / sizeof(T));
  if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

}  // namespace

namespace detail {

[[noreturn]] void malformed(std::string_view fn, std::string_view what, const std::string& msg) {
  throw std::runtime_error(fmt::format("{}: {}: {}", fn, what, msg));
}

std::uint64_t header_length(std::span<const std::byte> prefix, std::uint64_t size, std::string_view fn,
                            std::string_view what) {
  if (size < 8)
    malformed(fn, what, fmt::format("truncated: expected at least 8 bytes (the header length), got {}", size));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | std::to_integer<std::uint64_t>(prefix[i]);
  if (n > kMaxHeader) malformed(fn, what, fmt::format("header length {} is over the limit of {} bytes", n, kMaxHeader));
  if (n > size - 8)
    malformed(fn, what,
              fmt::format("truncated: header length {} is larger than the file: expected at least {} bytes, got {}", n,
                          8 + n, size));
  return n;
}

Layout check_layout(std::string_view header_text, std::uint64_t size, std::string_view fn, std::string_view what) {
  const auto bad = [&](const std::string& msg) { malformed(fn, what, msg); };
  const std::uint64_t n = header_text.size();
  Layout layout{parse_st_header(header_text, fn, what), {}, {}};
  const StHeader& h = layout.header;
  std::vector<Range>& ranges = layout.ranges;
  std::vector<StDType>& dtypes = layout.dtypes;
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const StHeaderTensor& t = h.tensors[i];
    const std::string name = shown(t.name);
    if (t.name.empty()) bad("empty tensor name");
    const std::optional<StDType> dtype = st_dtype_named(t.dtype);
    if (!dtype) {
      static constexpr std::string_view kOthers[] = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32",
                                                     "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "C64"};
      const bool known = std::find(std::begin(kOthers), std::end(kOthers), t.dtype) != std::end(kOthers);
      bad(fmt::format("tensor {} has {} dtype {}; chainrule reads F32, F64 and I64", name,
                      known ? "unsupported" : "unknown", shown(t.dtype)));
    }
    dtypes.push_back(*dtype);
    for (std::uint64_t d : t.shape)
      if (d > kMaxDim) bad(fmt::format("tensor {}: dimension {} in shape {} is over 2^63 - 1", name, d, shape_shown(t.shape)));
    const auto need = byte_size(t.shape, st_dtype_size(dtypes.back()));
    if (!need) bad(fmt::format("tensor {}: the size of shape {} overflows 64 bits", name, shape_shown(t.shape)));
    const std::uint64_t begin = t.offsets[0], end = t.offsets[1];
    if (begin > end) bad(fmt::format("tensor {}: data_offsets [{}, {}] end before they begin", name, begin, end));
    if (end - begin != *need)
      bad(fmt::format("tensor {}: data_offsets [{}, {}] hold {} bytes, but dtype {} with shape {} needs {}", name,
                      begin, end, end - begin, t.dtype, shape_shown(t.shape), *need));
    ranges.push_back({begin, end, i});
  }

  // Past the end first, so that a cut-off file is reported as truncated rather than as a hole.
  const std::uint64_t data_size = size - 8 - n;
  const auto last = std::max_element(ranges.begin(), ranges.end(), [](auto& a, auto& b) { return a.end < b.end; });
  if (last != ranges.end() && last->end > data_size) {
    std::uint64_t expected = 0;
    const bool fits = !__builtin_add_overflow(8 + n, last->end, &expected);
    bad(fmt::format("truncated: expected {} bytes, got {} (tensor {} has data_offsets [{}, {}] but the data buffer "
                    "holds {} bytes)",
                    maybe_huge(fits ? std::optional(expected) : std::nullopt), size, shown(h.tensors[last->index].name),
                    last->begin, last->end, data_size));
  }
  // The ranges must tile the buffer, which rules out aliasing tensors and unaccounted bytes. The
  // index breaks ties between empty tensors, so that the output order is deterministic.
  std::sort(ranges.begin(), ranges.end(),
            [](auto& a, auto& b) { return std::tie(a.begin, a.end, a.index) < std::tie(b.begin, b.end, b.index); });
  std::uint64_t covered = 0;
  for (std::size_t k = 0; k < ranges.size(); ++k) {
    const Range& r = ranges[k];
    if (r.begin < covered) {
      const Range& p = ranges[k - 1];
      bad(fmt::format("tensor {} with data_offsets [{}, {}] overlaps tensor {} with data_offsets [{}, {}]",
                      shown(h.tensors[r.index].name), r.begin, r.end, shown(h.tensors[p.index].name), p.begin, p.end));
    }
    if (r.begin > covered)
      bad(fmt::format("bytes [{}, {}) of the data buffer belong to no tensor (a hole before tensor {})", covered,
                      r.begin, shown(h.tensors[r.index].name)));
    covered = r.end;
  }
  if (covered != data_size)
    bad(fmt::format("{} bytes after the last tensor belong to no tensor: expected {} bytes, got {}",
                    data_size - covered, 8 + n + covered, size));
  return layout;
}

StFile build_file(Layout&& layout, const std::byte* data) {
  StFile file;
  file.metadata = std::move(layout.header.metadata);
  file.tensors.reserve(layout.ranges.size());
  for (const Range& r : layout.ranges) {
    StHeaderTensor& t = layout.header.tensors[r.index];
    file.tensors.push_back({std::move(t.name), layout.dtypes[r.index], {t.shape.begin(), t.shape.end()},
                            {data + r.begin, data + r.end}});
  }
  return file;
}

}  // namespace detail

std::size_t st_dtype_size(StDType dtype) { return dtype == StDType::F32 ? 4 : 8; }
std::string_view st_dtype_name(StDType dtype) {
  switch (dtype) {
    case StDType::F32: return "F32";
    case StDType::F64: return "F64";
    case StDType::I64: return "I64";
  }
  return "?";
}
std::optional<StDType> st_dtype_named(std::string_view name) {
  for (StDType d : {StDType::F32, StDType::F64, StDType::I64})
    if (st_dtype_name(d) == name) return d;
  return std::nullopt;
}

StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const float> values) {
  return make_entry(std::move(name), std::move(shape), values);
}
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const double> values) {
  return make_entry(std::move(name), std::move(shape), values);
}
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const std::int64_t> values) {
  return make_entry(std::move(name), std::move(shape), values);
}
std::vector<float> st_values_f32(const StEntry& entry) { return values_of<float>(entry, StDType::F32); }
std::vector<double> st_values_f64(const StEntry& entry) { return values_of<double>(entry, StDType::F64); }
std::vector<std::int64_t> st_values_i64(const StEntry& entry) { return values_of<std::int64_t>(entry, StDType::I64); }

std::vector<std::byte> encode_safetensors(const StFile& file) {
  const auto bad = [](const std::string& msg) { throw std::invalid_argument("encode_safetensors: " + msg); };
  std::vector<const StEntry*> order;
  std::set<std::string_view> names;
  for (const StEntry& e : file.tensors) {
    if (e.name.empty()) bad("a tensor has an empty name");
    if (e.name == "__metadata__") bad("\"__metadata__\" is reserved and cannot name a tensor");
    if (!valid_utf8(e.name)) bad(fmt::format("tensor name {} is not valid UTF-8", shown(e.name)));
    if (!names.insert(e.name).second) bad(fmt::format("duplicate tensor name {}", shown(e.name)));
    for (std::int64_t d : e.shape)
      if (d < 0) bad(fmt::format("tensor {}: negative dimension in shape {}", shown(e.name), shape_shown(e.shape)));
    const auto need = byte_size(e.shape, st_dtype_size(e.dtype));
    if (!need || *need != e.data.size())
      bad(fmt::format("tensor {}: dtype {} with shape {} needs {} bytes, data has {}", shown(e.name),
                      st_dtype_name(e.dtype), shape_shown(e.shape), maybe_huge(need), e.data.size()));
    order.push_back(&e);
  }
  for (const auto& [key, value] : file.metadata)
    if (!valid_utf8(key) || !valid_utf8(value)) bad(fmt::format("metadata entry {} is not valid UTF-8", shown(key)));
  std::sort(order.begin(), order.end(), [](const StEntry* a, const StEntry* b) {
    const std::size_t sa = st_dtype_size(a->dtype), sb = st_dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  std::string header = "{";
  if (!file.metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [key, value] : file.metadata) {
      if (header.back() != '{') header += ',';
      put_json_string(header, key);
      header += ':';
      put_json_string(header, value);
    }
    header += '}';
  }
  std::uint64_t offset = 0;
  for (const StEntry* e : order) {
    if (header.size() > 1) header += ',';
    put_json_string(header, e->name);
    header += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[", st_dtype_name(e->dtype));
    for (std::size_t i = 0; i < e->shape.size(); ++i) header += fmt::format("{}{}", i ? "," : "", e->shape[i]);
    header += fmt::format("],\"data_offsets\":[{},{}]}}", offset, offset + e->data.size());
    offset += e->data.size();
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxHeader)
    bad(fmt::format("the header would take {} bytes, over the limit of {}", header.size(), kMaxHeader));

  std::vector<std::byte> out;
  out.reserve(8 + header.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(std::uint64_t{header.size()} >> (8 * i) & 0xFF));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  for (const StEntry* e : order) out.insert(out.end(), e->data.begin(), e->data.end());
  return out;
}

StFile decode_safetensors(std::span<const std::byte> bytes, std::string_view what) {
  constexpr std::string_view fn = "decode_safetensors";
  const std::uint64_t n = detail::header_length(bytes.first(std::min<std::size_t>(bytes.size(), 8)), bytes.size(), fn, what);
  return detail::build_file(detail::check_layout(detail::header_text(bytes.data() + 8, n), bytes.size(), fn, what), bytes.data() + 8 + n);
}

}  // namespace chainrule::nn
