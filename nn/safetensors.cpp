#include "nn/safetensors.h"

#include "nn/safetensors_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <new>
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
using detail::put_json_string;
using detail::shown;
using detail::valid_utf8;

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit
constexpr std::uint64_t kMaxDim = std::numeric_limits<std::int64_t>::max();

template <typename Int>
std::string shape_str(const std::vector<Int>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

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

// ---- Decoding: the header's numbers checked against each other and the file. ----
// In three steps, so that load_safetensors can check a file's header against its size before it
// reads (or allocates) the data: a 1 TB file whose header describes 1 KB is refused at once.

[[noreturn]] void malformed(std::string_view fn, std::string_view what, const std::string& msg) {
  throw std::runtime_error(fmt::format("{}: {}: {}", fn, what, msg));
}

// The header length N from the first min(8, size) bytes of a file of `size` bytes, checked
// against the limit and the size.
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

struct Range {
  std::uint64_t begin, end;
  std::size_t index;  // into Layout::header.tensors
};

// A header checked against itself and against a file of `size` bytes: once this exists, the data
// buffer (the last size - 8 - N bytes) is exactly tiled by `ranges`.
struct Layout {
  detail::StHeader header;
  std::vector<StDType> dtypes;  // per header tensor
  std::vector<Range> ranges;    // sorted by position in the data buffer
};

Layout check_layout(std::string_view header_text, std::uint64_t size, std::string_view fn, std::string_view what) {
  const auto bad = [&](const std::string& msg) { malformed(fn, what, msg); };
  const std::uint64_t n = header_text.size();
  Layout layout{detail::parse_st_header(header_text, fn, what), {}, {}};
  const detail::StHeader& h = layout.header;
  std::vector<Range>& ranges = layout.ranges;
  std::vector<StDType>& dtypes = layout.dtypes;
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const detail::StHeaderTensor& t = h.tensors[i];
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
  return layout;
}

// The StFile of a checked layout; `data` is its data buffer (the bytes after the header).
StFile build(Layout&& layout, const std::byte* data) {
  StFile file;
  file.metadata = std::move(layout.header.metadata);
  file.tensors.reserve(layout.ranges.size());
  for (const Range& r : layout.ranges) {
    detail::StHeaderTensor& t = layout.header.tensors[r.index];
    file.tensors.push_back({std::move(t.name), layout.dtypes[r.index], {t.shape.begin(), t.shape.end()},
                            {data + r.begin, data + r.end}});
  }
  return file;
}

std::string_view header_text(const std::byte* at, std::uint64_t n) { return {reinterpret_cast<const char*>(at), n}; }

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
  // The rename below replaces whatever the path names. A regular file or a symlink is what a save
  // replaces; a FIFO or a device node (/dev/null, as root) is not a model file: refused, untouched.
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode) && !S_ISLNK(existing.st_mode) &&
      !S_ISDIR(existing.st_mode))
    throw std::runtime_error(fmt::format("{}: {}: exists and is not a regular file (a FIFO, socket or device); "
                                         "refusing to replace it",
                                         fn, path.string()));

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
  constexpr std::string_view fn = "decode_safetensors";
  const std::uint64_t n = header_length(bytes.first(std::min<std::size_t>(bytes.size(), 8)), bytes.size(), fn, what);
  return build(check_layout(header_text(bytes.data() + 8, n), bytes.size(), fn, what), bytes.data() + 8 + n);
}

void save_safetensors(const fs::path& path, const StFile& file) { save(path, file, std::nullopt); }

StFile load_safetensors(const fs::path& path) {
  constexpr std::string_view fn = "load_safetensors";
  const std::string what = path.string();
  // O_NONBLOCK: opening a FIFO with no writer would wait forever before the regular-file check
  // below could refuse it (reads of a regular file ignore the flag).
  FdGuard in{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (in.fd < 0) system_fail(fn, path, "cannot open", errno);
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) system_fail(fn, path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(fmt::format("{}: {}: not a regular file", fn, what));
  // Reads the next `count` bytes into `out`. A file that shrinks under us is reported as what it
  // has become: truncated.
  const auto read_into = [&](std::byte* out, std::uint64_t count) {
    for (std::uint64_t done = 0; done < count;) {
      const ssize_t r = ::read(in.fd, out + done, std::min<std::uint64_t>(count - done, 1 << 30));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) system_fail(fn, path, "read error", errno);
      if (r == 0)
        malformed(fn, what, fmt::format("truncated: the file shrank from {} bytes while it was read", st.st_size));
      done += static_cast<std::uint64_t>(r);
    }
  };
  // The header is checked against the file's size before the data is read, so a file far larger
  // than its header says (or a sparse one) costs no more than its header.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::byte prefix[8] = {};
  read_into(prefix, std::min<std::uint64_t>(size, 8));
  const std::uint64_t n = header_length({prefix, std::min<std::size_t>(size, 8)}, size, fn, what);
  Layout layout = [&] {  // the header's bytes (up to 100 MB) are freed before the data is allocated
    std::vector<std::byte> header(n);
    read_into(header.data(), n);
    return check_layout(header_text(header.data(), n), size, fn, what);
  }();
  std::vector<std::byte> data;
  try {
    data.resize(size - 8 - n);
  } catch (const std::bad_alloc&) {
    malformed(fn, what, fmt::format("cannot allocate {} bytes for the tensors' data", size - 8 - n));
  }
  read_into(data.data(), data.size());
  return build(std::move(layout), data.data());
}

namespace detail {
void save_safetensors_interrupted_for_test(const fs::path& path, const StFile& file, std::size_t bytes_before_failure) {
  save(path, file, bytes_before_failure);
}
}  // namespace detail

}  // namespace chainrule::nn
