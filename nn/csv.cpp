#include "nn/csv.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <unordered_set>

#include <fmt/format.h>

namespace chainrule::nn {
namespace {

// Text from the file as a message shows it: control bytes escaped (\x1b, \r) so that a hostile
// file cannot drive the terminal, and cut to 80 bytes ("..." after) so that a 100 MB cell does
// not become a 100 MB message.
std::string shown(std::string_view text) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += text[i];
  }
  return text.size() > kMax ? out + "..." : out;
}

// The first 20 names, then how many more: a header of a million columns is one line of message.
std::string join_names(const std::vector<std::string>& names) {
  constexpr std::size_t kMax = 20;
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kMax; ++i) {
    if (i > 0) out += ", ";
    out += shown(names[i]);
  }
  if (names.size() > kMax) out += fmt::format(", ... ({} in all)", names.size());
  return out;
}

// Every message starts with "read_csv: <path>:<line>:" so an editor can jump to the spot.
[[noreturn]] void fail(const std::filesystem::path& path, std::size_t line, const std::string& what) {
  throw std::invalid_argument(fmt::format("read_csv: {}:{}: {}", path.string(), line, what));
}

// At most max_bytes bytes: a source that never ends (a FIFO, /dev/zero) stops there.
std::string read_file(const std::filesystem::path& path, std::size_t max_bytes) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(fmt::format("read_csv: cannot open '{}': {}", path.string(),
                                         errno ? std::strerror(errno) : "unknown reason"));
  // libstdc++'s filebuf throws std::ios_base::failure ("basic_filebuf::underflow error reading the
  // file") for a read error such as EISDIR, which opening a directory does not report; say which
  // file and which operation.
  try {
    std::string content;
    char chunk[1 << 16];
    // From the buffer itself, so that a read error surfaces as the exception described above.
    while (const std::streamsize got = in.rdbuf()->sgetn(chunk, sizeof chunk)) {
      const auto n = static_cast<std::size_t>(got);
      if (n > max_bytes - content.size())
        throw std::length_error(fmt::format(
            "read_csv: '{}' holds more than {} bytes (CsvOptions::max_bytes); raise the limit to read it",
            path.string(), max_bytes));
      content.append(chunk, n);
    }
    return content;
  } catch (const std::ios_base::failure& e) {
    throw std::runtime_error(fmt::format("read_csv: error reading '{}': {}", path.string(), e.code().message()));
  }
}

class CellSplitter {
 public:
  CellSplitter(const std::filesystem::path& path, char delimiter) : path_(path), delimiter_(delimiter) {}

  // Spaces and tabs are padding unless they are the delimiter itself (TSV, or ' '): a space
  // delimiter taken as padding merged "1  2 3" into three cells, its empty one dropped and the
  // next values moved into the wrong columns.
  bool is_space(char c) const { return c != delimiter_ && (c == ' ' || c == '\t'); }

  bool is_blank(std::string_view line) const {  // skipped, whatever the delimiter
    for (char c : line)
      if (c != ' ' && c != '\t') return false;
    return true;
  }

  // Splits one line into cells, trimming spaces around each cell and removing quotes.
  // Quotes matter mostly for headers ("X1", "price, EUR"); a quoted number parses as a number.
  // `too_many` is called, instead of splitting on, once a row has more cells than `limit`: a line
  // of sixteen million commas would otherwise make as many strings (about 65 times the file's
  // size) before its count is checked. `header`: an empty name fails at once, for the same reason.
  template <class TooMany>
  std::vector<std::string> split(std::string_view line, std::size_t line_no, bool header, std::size_t limit,
                                 TooMany&& too_many) const {
    std::vector<std::string> cells;
    std::size_t i = 0;
    while (true) {
      while (i < line.size() && is_space(line[i])) ++i;
      std::string cell;
      if (i < line.size() && line[i] == '"') {
        ++i;
        bool closed = false;
        while (i < line.size()) {
          if (line[i] == '"') {
            if (i + 1 < line.size() && line[i + 1] == '"') {
              cell += '"';
              i += 2;
              continue;
            }
            closed = true;
            ++i;
            break;
          }
          cell += line[i++];
        }
        if (!closed) fail(path_, line_no, "unterminated quote (quoted cells cannot span lines)");
        while (i < line.size() && is_space(line[i])) ++i;
        if (i < line.size() && line[i] != delimiter_)
          fail(path_, line_no, fmt::format("unexpected text after the closing quote of \"{}\"", shown(cell)));
      } else {
        const std::size_t start = i;
        for (; i < line.size() && line[i] != delimiter_; ++i)
          if (line[i] == '\r')  // otherwise a CR-only file would read as one header line and no rows
            fail(path_, line_no, fmt::format("carriage return in cell {} not followed by a line feed: CR-only line "
                                             "endings (as classic Mac Excel writes) are not supported, use LF or CRLF",
                                             cells.size() + 1));
        std::size_t end = i;
        while (end > start && is_space(line[end - 1])) --end;
        cell.assign(line.substr(start, end - start));
      }
      if (header && cell.empty()) fail(path_, line_no, fmt::format("header: column {} has an empty name", cells.size() + 1));
      cells.push_back(std::move(cell));
      if (cells.size() > limit) too_many();
      if (i >= line.size()) break;
      ++i;  // skip the delimiter; a trailing delimiter yields a final empty cell
    }
    return cells;
  }

 private:
  const std::filesystem::path& path_;
  char delimiter_;
};

double parse_number(std::string_view text, bool allow_non_finite, const std::filesystem::path& path,
                    std::size_t line_no, const std::string& column) {
  if (text.empty())
    fail(path, line_no, fmt::format("column '{}': empty cell (missing values are not supported)", shown(column)));
  std::string_view digits = text;
  // from_chars rejects a leading '+', which spreadsheets sometimes write.
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') digits.remove_prefix(1);
  double value = 0.0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range && end == digits.data() + digits.size()) {
    // Too small for a double ("1e-400") reads as 0 with its sign, as strtod, Python and NumPy read
    // it (from_chars reports it like an overflow); too large stays an error.
    const std::string copy(digits);
    const double near = std::strtod(copy.c_str(), nullptr);
    if (std::abs(near) < std::numeric_limits<double>::min()) return near;
  }
  // Trailing text first: "1e400x" is not a number, whatever its digits would be.
  if (ec == std::errc::result_out_of_range && end == digits.data() + digits.size())
    fail(path, line_no, fmt::format("column '{}': '{}' is out of the range of a double", shown(column), shown(text)));
  if (ec != std::errc() || end != digits.data() + digits.size())
    fail(path, line_no, fmt::format("column '{}': '{}' is not a number", shown(column), shown(text)));
  if (!allow_non_finite && !std::isfinite(value))
    fail(path, line_no,
         fmt::format("column '{}': '{}' is not a finite number (set CsvOptions::allow_non_finite to accept nan/inf)",
                     shown(column), shown(text)));
  return value;
}

}  // namespace

std::size_t CsvTable::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return i;
  throw std::out_of_range(
      fmt::format("CsvTable: no column named '{}'; available columns: {}", shown(name), join_names(columns)));
}

namespace {
// A CsvTable built by hand may be ragged (read_csv's never is): a short row is named, not read past.
void check_row(const CsvTable& t, std::size_t r, const char* who) {
  if (t.rows[r].size() != t.columns.size())
    throw std::invalid_argument(fmt::format("{}: row {} has {} values but the table has {} columns ({})", who, r,
                                            t.rows[r].size(), t.columns.size(), join_names(t.columns)));
}
}  // namespace

std::vector<double> CsvTable::column(std::string_view name) const {
  const std::size_t c = index_of(name);
  std::vector<double> values;
  values.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    check_row(*this, r, "CsvTable::column");
    values.push_back(rows[r][c]);
  }
  return values;
}

CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    throw std::invalid_argument("read_csv: the delimiter cannot be a double quote or a line break");
  std::string content = read_file(path, options.max_bytes);
  std::string_view rest(content);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);

  const CellSplitter splitter(path, options.delimiter);
  std::vector<std::string> header;
  std::vector<std::size_t> keep;  // file positions of the kept columns, in output order
  CsvTable table;                 // local until complete: nothing escapes on error
  std::size_t line_no = 0;
  std::size_t blank_after_header = 0;  // a one-column table's blank line: a missing value, if a row follows

  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (splitter.is_blank(line)) {
      if (header.size() == 1 && blank_after_header == 0) blank_after_header = line_no;
      continue;
    }
    // In a table of one column a blank line is a missing value (pandas writes NaN so), and
    // skipping it would shift every later row against the rows of another file or column: an
    // error, as an empty cell is, unless only blank lines follow.
    if (blank_after_header != 0)
      fail(path, blank_after_header,
           fmt::format("empty line in a one-column table ({}): a missing value (missing values are not "
                       "supported; blank lines are skipped only at the end of a one-column table)",
                       join_names(header)));

    // A row may overshoot by a little and still be counted exactly in the message.
    const std::size_t limit = header.empty() ? std::numeric_limits<std::size_t>::max() : header.size() + 1024;
    auto too_many = [&] {
      fail(path, line_no,
           fmt::format("expected {} cells ({}), found more than {}", header.size(), join_names(header), limit));
    };
    std::vector<std::string> cells = splitter.split(line, line_no, header.empty(), limit, too_many);
    if (header.empty()) {
      std::unordered_set<std::string> seen;
      for (std::size_t c = 0; c < cells.size(); ++c) {
        if (!seen.insert(cells[c]).second)
          fail(path, line_no, fmt::format("header: column name '{}' appears twice", shown(cells[c])));
      }
      header = std::move(cells);
      if (options.columns.empty()) {
        for (std::size_t c = 0; c < header.size(); ++c) keep.push_back(c);
      } else {
        CsvTable names_only{header, {}};
        std::unordered_set<std::string> wanted;
        for (const auto& name : options.columns) {
          if (!wanted.insert(name).second)
            throw std::invalid_argument(fmt::format("read_csv: CsvOptions::columns lists '{}' twice", name));
          try {
            keep.push_back(names_only.index_of(name));
          } catch (const std::out_of_range& e) {
            throw std::out_of_range(fmt::format("read_csv: {}: {}", path.string(), e.what()));
          }
        }
      }
      for (std::size_t c : keep) table.columns.push_back(header[c]);
      continue;
    }

    if (cells.size() != header.size())
      fail(path, line_no,
           fmt::format("expected {} cells ({}), found {}", header.size(), join_names(header), cells.size()));
    std::vector<double> row;
    row.reserve(keep.size());
    // Only kept columns must be numeric, so a text column (e.g. a customer name) can be skipped.
    for (std::size_t c : keep)
      row.push_back(parse_number(cells[c], options.allow_non_finite, path, line_no, header[c]));
    table.rows.push_back(std::move(row));
  }

  if (header.empty())
    throw std::invalid_argument(fmt::format("read_csv: {}: the file is empty; expected a header row", path.string()));
  return table;
}

Dataset select(const CsvTable& table, const std::vector<std::string>& features,
               const std::vector<std::string>& targets) {
  if (features.empty()) throw std::invalid_argument("select: no feature columns given");
  std::unordered_set<std::string> used;
  for (const auto& name : features)
    if (!used.insert(name).second) throw std::invalid_argument(fmt::format("select: feature '{}' listed twice", name));
  std::unordered_set<std::string> target_set;
  for (const auto& name : targets) {
    if (!target_set.insert(name).second) throw std::invalid_argument(fmt::format("select: target '{}' listed twice", name));
    if (used.count(name) != 0)
      throw std::invalid_argument(fmt::format("select: '{}' is both a feature and a target", name));
  }

  std::vector<std::size_t> fi, ti;
  for (const auto& name : features) fi.push_back(table.index_of(name));
  for (const auto& name : targets) ti.push_back(table.index_of(name));

  Dataset data;
  data.feature_names = features;
  data.target_names = targets;
  data.features.reserve(table.rows.size());
  data.targets.reserve(table.rows.size());
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    check_row(table, r, "select");
    const std::vector<double>& row = table.rows[r];
    std::vector<double> f, t;
    f.reserve(fi.size());
    t.reserve(ti.size());
    for (std::size_t c : fi) f.push_back(row[c]);
    for (std::size_t c : ti) t.push_back(row[c]);
    data.features.push_back(std::move(f));
    data.targets.push_back(std::move(t));
  }
  return data;
}

}  // namespace chainrule::nn
