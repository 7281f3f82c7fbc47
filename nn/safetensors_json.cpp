#include "nn/safetensors_json.h"

#include <fmt/format.h>

#include <set>
#include <stdexcept>
#include <utility>

namespace chainrule::nn::detail {

// ---- UTF-8 and JSON strings, shared by the reader and the writer. ----

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

std::string shown(std::string_view s) {
  std::string out;
  put_json_string(out, s.substr(0, 80));
  return s.size() > 80 ? out + "..." : out;
}

namespace {

// ---- The header's JSON: exactly the subset the format uses, nothing more. ----

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view fn, std::string_view what)
      : s_(text), fn_(fn), what_(what) {}

  StHeader parse() {
    StHeader h;
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

  StHeaderTensor tensor(std::string name) {
    StHeaderTensor t{std::move(name), {}, {}, {}};
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

}  // namespace

StHeader parse_st_header(std::string_view text, std::string_view fn, std::string_view what) {
  return HeaderParser(text, fn, what).parse();
}

namespace {
template <typename Int>
std::string shape_text(std::span<const Int> shape) {
  constexpr std::size_t kShown = 8;
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size() && i < kShown; ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  if (shape.size() > kShown) out += fmt::format(", ... ({} dims)", shape.size());
  return out + "]";
}
}  // namespace

std::string shape_shown(std::span<const std::int64_t> shape) { return shape_text(shape); }
std::string shape_shown(std::span<const std::uint64_t> shape) { return shape_text(shape); }

}  // namespace chainrule::nn::detail
