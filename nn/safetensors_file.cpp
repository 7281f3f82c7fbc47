// save_safetensors and load_safetensors: the format (nn/safetensors.cpp) on POSIX files, written
// atomically and read with the header checked against the file's size before the data.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "nn/safetensors_layout.h"

namespace chainrule::nn {
namespace {

namespace fs = std::filesystem;
using detail::malformed;

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

  // The temporary file's name: the file's own, cut to 100 bytes (at a UTF-8 character's start)
  // so that any name the filesystem takes (up to 255 bytes) leaves room for the suffix.
  std::string stem = path.filename().string();
  if (stem.size() > 100) {
    std::size_t cut = 100;
    while (cut > 0 && (static_cast<unsigned char>(stem[cut]) & 0xC0) == 0x80) --cut;
    stem.resize(cut);
  }
  static std::atomic<unsigned> counter{0};
  FdGuard out;
  fs::path tmp;
  for (int attempt = 0; out.fd < 0; ++attempt) {  // O_EXCL: never write into a temp another save owns
    tmp = dir / fmt::format(".{}.tmp.{}.{}", stem, ::getpid(), counter++);
    out.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (out.fd < 0 && (errno != EEXIST || attempt == 100))
      system_fail(fn, path, fmt::format("cannot create {}", tmp.string()), errno);
  }
  try {
    // A file replaced keeps its permissions (a private model stays private); a new one gets
    // 0666 less the umask, as any file.
    struct stat replaced {};
    if (::stat(path.c_str(), &replaced) == 0 && S_ISREG(replaced.st_mode) &&
        ::fchmod(out.fd, replaced.st_mode & 07777) != 0)
      system_fail(fn, path, fmt::format("setting the mode of {}", tmp.string()), errno);
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

}  // namespace

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
  const std::uint64_t n = detail::header_length({prefix, std::min<std::size_t>(size, 8)}, size, fn, what);
  detail::Layout layout = [&] {  // the header's bytes (up to 100 MB) are freed before the data is allocated
    std::vector<std::byte> header(n);
    read_into(header.data(), n);
    return detail::check_layout(detail::header_text(header.data(), n), size, fn, what);
  }();
  std::vector<std::byte> data;
  try {
    data.resize(size - 8 - n);
  } catch (const std::bad_alloc&) {
    malformed(fn, what, fmt::format("cannot allocate {} bytes for the tensors' data", size - 8 - n));
  }
  read_into(data.data(), data.size());
  return detail::build_file(std::move(layout), data.data());
}

namespace detail {
void save_safetensors_interrupted_for_test(const fs::path& path, const StFile& file, std::size_t bytes_before_failure) {
  save(path, file, bytes_before_failure);
}
}  // namespace detail

}  // namespace chainrule::nn
