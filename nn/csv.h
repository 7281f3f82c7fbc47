// Reading numeric CSV files with a header row into named columns of doubles.
//
//   auto table = chainrule::nn::read_csv("examples/data/lecture.csv");   // header Y,X1,X2
//   auto data  = chainrule::nn::select(table, {"X1", "X2"}, {"Y"});
//   // data.features: 5 rows x 2 columns, data.targets: 5 rows x 1 column
//
// Format accepted by read_csv:
//   - The first line is the header: one name per column, unique and non-empty. Names may be
//     quoted ("X1"); a quoted name may contain the delimiter, and "" inside quotes is one ".
//   - Every other line holds exactly one cell per header column; the cells of the kept columns
//     (CsvOptions::columns) must be numbers, other columns may hold any text. Cells may be
//     surrounded by spaces and may be quoted. Numbers are what std::from_chars accepts (decimal or scientific,
//     e.g. 2, -0.5, 1.5e-3), plus an optional leading '+'. Anything else in a cell is an error:
//     trailing garbage ("1.5x"), an empty cell (missing values are not supported), hex.
//   - "nan", "inf" and "infinity" (any case) are rejected by default because in training data
//     they almost always mean a missing or corrupt value; CsvOptions::allow_non_finite = true
//     accepts them (e.g. to read back a loss history that diverged).
//   - LF or CRLF line endings, with or without a final newline, and a UTF-8 byte order mark
//     (as Excel writes) are accepted. Lines that are empty or only spaces are skipped, except in a
//     table of one column, where such a line before a data row is a missing value (an error, as an
//     empty cell is: pandas writes NaN so, and skipping it would shift the later rows). A carriage
//     return anywhere else outside quotes is an error: CR-only line endings (classic Mac Excel's
//     "CSV (Macintosh)") would otherwise read as one long header and no rows.
//   - Messages quote text from the file with control characters escaped (\x0d) and cut after
//     80 bytes ("..."); a header of more than 20 columns is listed by its first 20.
//   - Line numbers in messages are the file's physical lines, 1-based, so the header is line 1.
//   - A header with no data rows is a valid table with zero rows. A file with no header
//     (empty, or only blank lines) is an error.
//   - Nothing is half-loaded: read_csv returns a complete table or throws.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace chainrule::nn {

// A table of doubles with named columns; rows[r][c] is row r (0-based, header excluded) of
// column columns[c]. Every row has columns.size() values.
struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;

  // Position of the column called `name` in `columns`.
  // Throws std::out_of_range naming `name` and listing the available columns.
  std::size_t index_of(std::string_view name) const;

  // A copy of one column, one value per row: column("X1") == {2, 2.8, 1.5, 2.5, 7.7} for the
  // lecture's data. Throws std::out_of_range as index_of does.
  std::vector<double> column(std::string_view name) const;
};

struct CsvOptions {
  // Cell separator: ',' for CSV, ';' for European Excel exports, '\t' for TSV. With ' ' or '\t'
  // every one separates (runs are not merged: two in a row enclose an empty cell, an error).
  char delimiter = ',';
  // Columns to keep, in the order given here (not the file's order). Empty keeps every column
  // in file order. A name missing from the header throws std::out_of_range; a name listed
  // twice throws std::invalid_argument.
  std::vector<std::string> columns = {};
  // Accept nan/inf cells instead of rejecting them (see the format notes above).
  bool allow_non_finite = false;
  // The most bytes read_csv reads (1 GiB): a larger file, or a source that never ends (a FIFO, a
  // device such as /dev/zero), throws std::length_error once this many bytes have been read,
  // instead of growing memory until the process is killed. The table takes about 56 bytes per row
  // plus 8 per value: a file of one short number per line ("1\n") takes about 30 times its size.
  std::size_t max_bytes = std::size_t{1} << 30;
};

// Reads a numeric CSV file with a header row; see the format notes at the top of this file.
// Messages about the content start with "read_csv: <path>:<line>:". Throws:
//   std::runtime_error      the file cannot be opened or read, e.g. it is a directory (message
//                           names the path and the system's reason);
//   std::invalid_argument   malformed content: no header, empty or duplicate column name,
//                           a delimiter that is '"' or a line break,
//                           unterminated quote, a carriage return not followed by a line feed,
//                           a row with the wrong number of cells
//                           ("data.csv:4: expected 3 cells (Y, X1, X2), found 2"), or a bad cell
//                           ("data.csv:3: column 'X1': '1.5x' is not a number");
//   std::out_of_range       a column asked for in options.columns is not in the header;
//   std::length_error       the file holds more than options.max_bytes bytes (the message names
//                           the path and the limit).
// A FIFO is read as a file: opening one waits for a writer (load_safetensors, which maps its file,
// refuses FIFOs instead).
CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options = {});

// Features and targets of a supervised data set, one inner vector per observation:
// features is N x F, targets is N x T, with the column names in the same order.
struct Dataset {
  std::vector<std::vector<double>> features;
  std::vector<std::vector<double>> targets;
  std::vector<std::string> feature_names;
  std::vector<std::string> target_names;
};

// Splits a table's columns into features and targets, in the order the names are given.
//   select(table, {"X1", "X2"}, {"Y"})  ->  features N x 2, targets N x 1
// `features` must be non-empty; `targets` may be empty (then every targets[r] is empty).
// Throws std::out_of_range for a name not in the table, std::invalid_argument for no features,
// a name listed twice, or a column used as both feature and target.
Dataset select(const CsvTable& table, const std::vector<std::string>& features,
               const std::vector<std::string>& targets);

}  // namespace chainrule::nn
