#pragma once
// Internal: writing a whole text file (a DOT picture, a loss plot or table), with the errors named.
#include <filesystem>
#include <string>

namespace chainrule::detail {

// Writes `text` to `path` (created or truncated). std::runtime_error naming `function`, the path and
// the system's reason when the file cannot be opened or written.
void write_text_file(const std::filesystem::path& path, const std::string& text, const char* function);

}  // namespace chainrule::detail
