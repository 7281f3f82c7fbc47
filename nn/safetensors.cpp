#include "nn/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chainrule::nn {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit
constexpr std::uint64_t kMaxDim = std::numeric_limits<std::int64_t>::max();

// Length of the valid UTF-8 sequence at s[i], or 0 if it is invalid: truncated, overlong, a
// surrogate, or above U+10FFFF. The ranges allowed for the second byte after E0, ED, F0 and F4
// are what rule out the last three.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = at(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (s.size() - i < n || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0, n = 0; i < s.size(); i += n)
    if ((n = utf8_sequence(s, i)) == 0) return false;
  return true;
}

// Escapes as serde_json (the reference implementation) does, so our headers match its bytes.
void put_json_string(std::string& out, std::string_view s) {
  static constexpr std::string_view kRaw = "\"\\\b\f\n\r\t", kEscaped = "\"\\bfnrt";
  out += '"';
  for (char ch : s) {
    if (const std::size_t k = kRaw.find(ch); k != std::string_view::npos) out += '\\', out += kEscaped[k];
    else if (static_cast<unsigned char>(ch) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
    else out += ch;
  }
  out += '"';
}

// A name as messages show it: quoted and escaped (a hostile file's names may hold control
// characters), cut short if long.
std::string shown(std::string_view s) {
  std::string out;
  put_json_string(out, s.substr(0, 80));
  return s.size() > 80 ? out + "..." : out;
}

template <typename Int>
std::string shape_str(const std::vector<Int>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

// element_size * product(shape), or nothing if that overflows 64 bits. Dimensions are >= 0.
template <typename Int>
std::optional<std::uint64_t> byte_size(const std::vector<Int>& shape, std::uint64_t element_size) {
  std::uint64_t n = element_size;
  for (Int d : shape)
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
  return n;
}

std::string maybe_huge(std::optional<std::uint64_t> n) { return n ? fmt::format("{}", *n) : "over 2^64"; }

// ---- The header's JSON: exactly the subset the format uses, nothing more. ----

struct RawTensor {
  std::string name, dtype;
  std::vector<std::uint64_t> shape, offsets;
};

struct Header {
  std::vector<RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view fn, std::string_view what)
      : s_(text), fn_(fn), what_(what) {}

  Header parse() {
    Header h;
    if (s_.empty() || s_[0] != '{') fail("the header must start with '{'");
    object("in the header (tensor names must be unique)", [&](std::string key) {
      if (key != "__metadata__") return h.tensors.push_back(tensor(std::move(key)));
      object("in __metadata__", [&](std::string k) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] != '"') fail(fmt::format("__metadata__ value of {} must be a string", shown(k)));
        h.metadata.emplace(std::move(k), string());
      });
    });
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected characters after the header object (padding must be spaces)");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw std::runtime_error(fmt::format("{}: {}: bad JSON header at byte {} of {} (file offset {}): {}", fn_, what_,
                                         pos_, s_.size(), pos_ + 8, msg));
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, std::string_view context) {
    if (!eat(c)) fail(fmt::format("expected '{}' {}", c, context));
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // {"key": value, ...}; on_member(key) parses the value. A repeated key is an error at any level:
  // JSON parsers disagree on which copy wins, so a file with one could load differently elsewhere.
  template <typename OnMember>
  void object(std::string_view where, OnMember on_member) {
    expect('{', where);
    if (eat('}')) return;
    std::set<std::string> seen;
    do {
      skip_ws();
      const std::size_t key_pos = pos_;
      std::string key = string();
      if (!seen.insert(key).second) pos_ = key_pos, fail(fmt::format("duplicate key {} {}", shown(key), where));
      expect(':', "after an object key");
      on_member(std::move(key));
    } while (eat(','));
    expect('}', fmt::format("or ',' {}", where));
  }

  RawTensor tensor(std::string name) {
    RawTensor t{std::move(name), {}, {}, {}};
    bool has_dtype = false, has_shape = false, has_offsets = false;
    const std::string where = fmt::format("in tensor {}", shown(t.name));
    object(where, [&](const std::string& key) {
      skip_ws();
      const std::size_t at = pos_;
      if (key == "dtype") t.dtype = string(), has_dtype = true;
      else if (key == "shape") t.shape = integers(), has_shape = true;
      else if (key == "data_offsets") t.offsets = integers(), has_offsets = true;
      else fail(fmt::format("unknown key {} {} (expected dtype, shape, data_offsets)", shown(key), where));
      if (key == "data_offsets" && t.offsets.size() != 2)
        pos_ = at, fail(fmt::format("data_offsets {} must be [begin, end]", where));
    });
    const char* missing = !has_dtype ? "dtype" : !has_shape ? "shape" : !has_offsets ? "data_offsets" : nullptr;
    if (missing) fail(fmt::format("tensor {} is missing \"{}\"", shown(t.name), missing));
    return t;
  }

  std::vector<std::uint64_t> integers() {
    expect('[', "to start an array of integers");
    std::vector<std::uint64_t> out;
    if (eat(']')) return out;
    do out.push_back(integer());
    while (eat(','));
    expect(']', "or ',' in an array of integers");
    return out;
  }

  std::uint64_t integer() {
    skip_ws();
    const std::size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') fail("negative numbers are not allowed here");
    if (pos_ >= s_.size() || !digit(s_[pos_])) fail("expected a non-negative integer");
    if (s_[pos_] == '0' && pos_ + 1 < s_.size() && digit(s_[pos_ + 1])) fail("leading zeros are not allowed in JSON");
    std::uint64_t v = 0;
    for (; pos_ < s_.size() && digit(s_[pos_]); ++pos_)
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, unsigned(s_[pos_] - '0'), &v))
        pos_ = start, fail("integer does not fit in 64 bits");
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
      fail("expected an integer, got a fraction or exponent");
    return v;
  }

  std::string string() {
    if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const unsigned char c = s_[pos_];
      if (c == '"') break;
      if (c < 0x20) fail("control character in a string (must be escaped)");
      if (c == '\\') {
        escape(out);
        continue;
      }
      const std::size_t n = utf8_sequence(s_, pos_);
      if (n == 0) fail("invalid UTF-8 in a string");
      out.append(s_.substr(pos_, n));
      pos_ += n;
    }
    ++pos_;
    return out;
  }

  void escape(std::string& out) {
    static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
    if (++pos_ >= s_.size()) fail("unterminated escape");
    if (const std::size_t k = kFrom.find(s_[pos_]); k != std::string_view::npos) {
      out += kTo[k];
      ++pos_;
      return;
    }
    if (s_[pos_] != 'u') fail("invalid escape");
    ++pos_;
    std::uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // JSON spells a code point above U+FFFF as two escapes
      if (s_.substr(pos_, 2) != "\\u") fail("high surrogate not followed by a low surrogate");
      pos_ += 2;
      const std::uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate not followed by a low surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    const int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;  // UTF-8 bytes for cp
    static constexpr unsigned kLead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    out += char(n == 1 ? cp : kLead[n] | cp >> (6 * (n - 1)));
    for (int k = n - 2; k >= 0; --k) out += char(0x80 | (cp >> (6 * k) & 0x3F));
  }

  std::uint32_t hex4() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = pos_ < s_.size() ? s_[pos_] : '\0';
      const int d = digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail("expected 4 hex digits after \\u");
      v = v << 4 | std::uint32_t(d);
    }
    return v;
  }

  std::string_view s_, fn_, what_;
  std::size_t pos_ = 0;
};

// ---- Decoding: the header's numbers checked against each other and the file. ----

StFile decode(std::span<const std::byte> bytes, std::string_view fn, std::string_view what) {
  const auto bad = [&](const std::string& msg) { throw std::runtime_error(fmt::format("{}: {}: {}", fn, what, msg)); };
  const std::uint64_t size = bytes.size();
  if (size < 8) bad(fmt::format("truncated: expected at least 8 bytes (the header length), got {}", size));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | std::to_integer<std::uint64_t>(bytes[i]);
  if (n > kMaxHeader) bad(fmt::format("header length {} is over the limit of {} bytes", n, kMaxHeader));
  if (n > size - 8)
    bad(fmt::format("truncated: header length {} is larger than the file: expected at least {} bytes, got {}", n,
                    8 + n, size));
  Header h = HeaderParser({reinterpret_cast<const char*>(bytes.data()) + 8, n}, fn, what).parse();

  struct Range {
    std::uint64_t begin, end;
    std::size_t index;
  };
  std::vector<Range> ranges;
  std::vector<StDType> dtypes;
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const RawTensor& t = h.tensors[i];
    const std::string name = shown(t.name);
    if (t.name.empty()) bad("empty tensor name");
    if (t.dtype != "F32" && t.dtype != "F64") {
      static constexpr std::string_view kOthers[] = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32",
                                                     "I64", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "C64"};
      const bool known = std::find(std::begin(kOthers), std::end(kOthers), t.dtype) != std::end(kOthers);
      bad(fmt::format("tensor {} has {} dtype {}; chainrule reads F32 and F64", name,
                      known ? "unsupported" : "unknown", shown(t.dtype)));
    }
    dtypes.push_back(t.dtype == "F64" ? StDType::F64 : StDType::F32);
    for (std::uint64_t d : t.shape)
      if (d > kMaxDim) bad(fmt::format("tensor {}: dimension {} in shape {} is over 2^63 - 1", name, d, shape_str(t.shape)));
    const auto need = byte_size(t.shape, st_dtype_size(dtypes.back()));
    if (!need) bad(fmt::format("tensor {}: the size of shape {} overflows 64 bits", name, shape_str(t.shape)));
    const std::uint64_t begin = t.offsets[0], end = t.offsets[1];
    if (begin > end) bad(fmt::format("tensor {}: data_offsets [{}, {}] end before they begin", name, begin, end));
    if (end - begin != *need)
      bad(fmt::format("tensor {}: data_offsets [{}, {}] hold {} bytes, but dtype {} with shape {} needs {}", name,
                      begin, end, end - begin, t.dtype, shape_str(t.shape), *need));
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

  StFile file;
  file.metadata = std::move(h.metadata);
  const std::byte* data = bytes.data() + 8 + n;
  for (const Range& r : ranges) {
    RawTensor& t = h.tensors[r.index];
    file.tensors.push_back({std::move(t.name), dtypes[r.index], {t.shape.begin(), t.shape.end()},
                            {data + r.begin, data + r.end}});
  }
  return file;
}

// ---- Files ----

[[noreturn]] void system_fail(std::string_view fn, const fs::path& path, std::string_view action, int err) {
  throw std::runtime_error(
      fmt::format("{}: {}: {}: {}", fn, path.string(), action, std::generic_category().message(err)));
}

struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// The one save path. fail_after injects the test hook's failure inside the write loop, so the
// cleanup it exercises is the cleanup a real write error (a full disk) gets.
void save(const fs::path& path, const StFile& file, std::optional<std::size_t> fail_after) {
  constexpr std::string_view fn = "save_safetensors";
  const std::vector<std::byte> bytes = encode_safetensors(file);  // a bad StFile throws before the disk is touched
  if (path.filename().empty())
    throw std::invalid_argument(fmt::format("{}: {}: the path names no file", fn, path.string()));
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();

  static std::atomic<unsigned> counter{0};
  FdGuard out;
  fs::path tmp;
  for (int attempt = 0; out.fd < 0; ++attempt) {  // O_EXCL: never write into a temp another save owns
    tmp = dir / fmt::format(".{}.tmp.{}.{}", path.filename().string(), ::getpid(), counter++);
    out.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (out.fd < 0 && (errno != EEXIST || attempt == 100))
      system_fail(fn, path, fmt::format("cannot create {}", tmp.string()), errno);
  }
  try {
    const std::size_t limit = fail_after ? std::min(*fail_after, bytes.size()) : bytes.size();
    for (std::size_t done = 0; done < limit;) {
      const ssize_t w = ::write(out.fd, bytes.data() + done, std::min<std::size_t>(limit - done, 1 << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) system_fail(fn, path, fmt::format("writing {}", tmp.string()), errno);
      done += static_cast<std::size_t>(w);
    }
    if (fail_after)
      throw std::runtime_error(fmt::format("{}: {}: simulated failure after writing {} of {} bytes of {}", fn,
                                           path.string(), limit, bytes.size(), tmp.string()));
    if (::fsync(out.fd) != 0) system_fail(fn, path, fmt::format("fsync of {}", tmp.string()), errno);
    const int rc = ::close(out.fd);  // close can report a deferred write error (NFS), so check it
    out.fd = -1;
    if (rc != 0) system_fail(fn, path, fmt::format("closing {}", tmp.string()), errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      system_fail(fn, path, fmt::format("renaming {} over it", tmp.string()), errno);
  } catch (...) {
    if (out.fd >= 0) ::close(out.fd), out.fd = -1;
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable. The new file is in place now and that cannot be undone, so
  // only a real I/O error is reported: a filesystem that cannot sync directories (EINVAL) or a
  // directory we may not open is not a failed save.
  FdGuard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0 && ::fsync(d.fd) != 0 && errno != EINVAL && errno != ENOTSUP)
    system_fail(fn, path, fmt::format("the file was replaced, but syncing directory {} failed", dir.string()), errno);
}

// The file is little-endian; a big-endian host swaps each element.
void to_little_endian(std::vector<std::byte>& data, std::size_t element_size) {
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i + element_size <= data.size(); i += element_size)
      std::reverse(data.begin() + i, data.begin() + i + element_size);
}

template <typename T>
StEntry make_entry(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
  const auto fail = [&](std::string_view why) {
    throw std::invalid_argument(fmt::format("make_st_entry: {}: shape {} {}", shown(name), shape_str(shape), why));
  };
  if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; })) fail("has a negative dimension");
  const auto bytes = byte_size(shape, sizeof(T));
  if (!bytes || *bytes != values.size() * sizeof(T)) fail(fmt::format("does not hold {} values", values.size()));
  StEntry e{std::move(name), sizeof(T) == 8 ? StDType::F64 : StDType::F32, std::move(shape), {}};
  e.data.resize(*bytes);
  if (!e.data.empty()) std::memcpy(e.data.data(), values.data(), e.data.size());  // memcpy(null, ..., 0) is UB
  to_little_endian(e.data, sizeof(T));
  return e;
}

template <typename T>
std::vector<T> values_of(const StEntry& e, StDType want) {
  if (e.dtype != want || e.data.size() % sizeof(T) != 0)
    throw std::invalid_argument(fmt::format("st_values_{}: tensor {} has dtype {} and {} bytes of data",
                                            sizeof(T) == 8 ? "f64" : "f32", shown(e.name), st_dtype_name(e.dtype),
                                            e.data.size()));
  std::vector<std::byte> raw = e.data;
  to_little_endian(raw, sizeof(T));  // the swap is its own inverse
  std::vector<T> out(raw.size() / sizeof(T));
  if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

}  // namespace

std::size_t st_dtype_size(StDType dtype) { return dtype == StDType::F64 ? 8 : 4; }
std::string_view st_dtype_name(StDType dtype) { return dtype == StDType::F64 ? "F64" : "F32"; }

StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const float> values) {
  return make_entry(std::move(name), std::move(shape), values);
}
StEntry make_st_entry(std::string name, std::vector<std::int64_t> shape, std::span<const double> values) {
  return make_entry(std::move(name), std::move(shape), values);
}
std::vector<float> st_values_f32(const StEntry& entry) { return values_of<float>(entry, StDType::F32); }
std::vector<double> st_values_f64(const StEntry& entry) { return values_of<double>(entry, StDType::F64); }

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
      if (d < 0) bad(fmt::format("tensor {}: negative dimension in shape {}", shown(e.name), shape_str(e.shape)));
    const auto need = byte_size(e.shape, st_dtype_size(e.dtype));
    if (!need || *need != e.data.size())
      bad(fmt::format("tensor {}: dtype {} with shape {} needs {} bytes, data has {}", shown(e.name),
                      st_dtype_name(e.dtype), shape_str(e.shape), maybe_huge(need), e.data.size()));
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
  return decode(bytes, "decode_safetensors", what);
}

void save_safetensors(const fs::path& path, const StFile& file) { save(path, file, std::nullopt); }

StFile load_safetensors(const fs::path& path) {
  constexpr std::string_view fn = "load_safetensors";
  FdGuard in{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) system_fail(fn, path, "cannot open", errno);
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) system_fail(fn, path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(fmt::format("{}: {}: not a regular file", fn, path.string()));
  std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::read(in.fd, bytes.data() + done, std::min<std::size_t>(bytes.size() - done, 1 << 30));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) system_fail(fn, path, "read error", errno);
    if (r == 0) break;  // the file shrank under us; decode reports what is missing
    done += static_cast<std::size_t>(r);
  }
  bytes.resize(done);
  return decode(bytes, fn, path.string());
}

namespace detail {
void save_safetensors_interrupted_for_test(const fs::path& path, const StFile& file, std::size_t bytes_before_failure) {
  save(path, file, bytes_before_failure);
}
}  // namespace detail

}  // namespace chainrule::nn
