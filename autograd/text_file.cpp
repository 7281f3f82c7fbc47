#include "autograd/text_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace chainrule::detail {

void write_text_file(const std::filesystem::path& path, const std::string& text, const char* function) {
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw std::runtime_error(fmt::format("{}: cannot open '{}' for writing: {}", function, path.string(),
                                         errno ? std::strerror(errno) : "unknown reason"));
  out << text;
  out.close();
  if (!out)
    throw std::runtime_error(fmt::format("{}: error writing '{}': {}", function, path.string(),
                                         errno ? std::strerror(errno) : "unknown reason"));
}

}  // namespace chainrule::detail
