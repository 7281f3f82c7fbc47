#include "nn/csv.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "tests/autograd/testing.h"

namespace fs = std::filesystem;
using chainrule::nn::CsvOptions;
using chainrule::nn::CsvTable;
using chainrule::nn::read_csv;
using chainrule::nn::select;
using chainrule::testing::message_of;

namespace {

// A CSV file holding `content` byte for byte, in a fresh temporary directory.
class TempCsv {
 public:
  explicit TempCsv(const std::string& content, const std::string& name = "data.csv")
      : path_(dir_.write(name, content)) {}
  const fs::path& path() const { return path_; }

 private:
  chainrule::testing::TempDir dir_;
  fs::path path_;
};

}  // namespace

TEST_CASE("csv: reads the lecture's five rows with a header", "[nn][csv]") {
  TempCsv file("Y,X1,X2\n0,2,1.5\n0,2.8,1.2\n0,1.5,1\n1,2.5,2\n0,7.7,3.5\n");
  const CsvTable t = read_csv(file.path());
  CHECK(t.columns == std::vector<std::string>{"Y", "X1", "X2"});
  REQUIRE(t.rows.size() == 5);
  CHECK(t.rows[0] == std::vector<double>{0, 2, 1.5});
  CHECK(t.rows[4] == std::vector<double>{0, 7.7, 3.5});
  CHECK(t.column("X1") == std::vector<double>{2, 2.8, 1.5, 2.5, 7.7});
  CHECK(t.index_of("X2") == 2);
}

TEST_CASE("csv: CRLF, missing final newline, spaces, quoted headers, BOM and blank lines", "[nn][csv]") {
  TempCsv file("\xEF\xBB\xBF \"Y\" , \"X1\",\"price, EUR\"\r\n\r\n 1 , 2.5 ,\"3\"\r\n  \r\n-4,+5,6e-1");
  const CsvTable t = read_csv(file.path());
  CHECK(t.columns == std::vector<std::string>{"Y", "X1", "price, EUR"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == std::vector<double>{1, 2.5, 3});
  CHECK(t.rows[1] == std::vector<double>{-4, 5, 0.6});
}

TEST_CASE("csv: other delimiters and a doubled quote inside a quoted header", "[nn][csv]") {
  TempCsv semicolon("a;\"say \"\"hi\"\"\"\n1;2\n");
  const CsvTable t = read_csv(semicolon.path(), {.delimiter = ';'});
  CHECK(t.columns == std::vector<std::string>{"a", "say \"hi\""});
  CHECK(t.rows == std::vector<std::vector<double>>{{1, 2}});

  TempCsv tabs("a\tb\n1\t2\n");
  CHECK(read_csv(tabs.path(), {.delimiter = '\t'}).rows == std::vector<std::vector<double>>{{1, 2}});
}

TEST_CASE("csv: kept columns come in the requested order and others may hold text", "[nn][csv]") {
  TempCsv file("name,Y,X1,X2\nAda,0,2,1.5\nBob,1,2.5,2\n");
  const CsvTable t = read_csv(file.path(), {.columns = {"X2", "Y"}});
  CHECK(t.columns == std::vector<std::string>{"X2", "Y"});
  CHECK(t.rows == std::vector<std::vector<double>>{{1.5, 0}, {2, 1}});

  const std::string msg = message_of<std::out_of_range>([&] { read_csv(file.path(), {.columns = {"X3"}}); });
  CHECK_THAT(msg, Catch::Contains("'X3'") && Catch::Contains("name, Y, X1, X2") && Catch::Contains("data.csv"));
  CHECK_THROWS_AS(read_csv(file.path(), {.columns = {"Y", "Y"}}), std::invalid_argument);
}

TEST_CASE("csv: a bad cell names file, line, column and text", "[nn][csv]") {
  TempCsv file("Y,X1,X2\n0,2,1.5\n0,1.5x,1.2\n");
  const std::string msg = message_of<std::invalid_argument>([&] { read_csv(file.path()); });
  CHECK_THAT(msg, Catch::Contains("data.csv:3:") && Catch::Contains("column 'X1'") && Catch::Contains("'1.5x'") &&
                      Catch::Contains("not a number"));

  for (const char* bad : {"abc", "1.5.2", "0x10", "1,5e", "--1", "+-1", "+"}) {
    TempCsv f(std::string("X\n") + bad + "\n");
    INFO(bad);
    CHECK_THROWS_AS(read_csv(f.path(), {.delimiter = ';'}), std::invalid_argument);
  }
  TempCsv junk_after_huge("Y\n1e400x\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(junk_after_huge.path()); }),
             Catch::Contains("'1e400x' is not a number"));
}

TEST_CASE("csv: empty cells, NaN and infinity", "[nn][csv]") {
  TempCsv empty("Y,X1\n0,\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(empty.path()); }),
             Catch::Contains(":2:") && Catch::Contains("column 'X1'") && Catch::Contains("empty cell"));

  TempCsv nan("Y,X1\nnan,1\n2,-inf\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(nan.path()); }),
             Catch::Contains(":2:") && Catch::Contains("'nan'") && Catch::Contains("allow_non_finite"));
  const CsvTable t = read_csv(nan.path(), {.allow_non_finite = true});
  CHECK(std::isnan(t.rows[0][0]));
  CHECK(t.rows[1][1] == -std::numeric_limits<double>::infinity());

  TempCsv huge("X\n1e999\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(huge.path()); }), Catch::Contains("out of the range"));
  TempCsv huge_negative("X\n-1e999\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(huge_negative.path()); }),
             Catch::Contains("'-1e999' is out of the range"));
  // Too small for a double is 0 with its sign (as strtod, Python and NumPy read it), like a
  // subnormal that rounds to 0; a subnormal that does not stays as it is.
  TempCsv tiny("X\n1e-400\n-1e-400\n1e-320\n+2e-999\n");
  const CsvTable small = read_csv(tiny.path());
  CHECK(small.rows[0][0] == 0.0);
  CHECK_FALSE(std::signbit(small.rows[0][0]));
  CHECK(small.rows[1][0] == 0.0);
  CHECK(std::signbit(small.rows[1][0]));
  CHECK(small.rows[2][0] == 1e-320);
  CHECK(small.rows[3][0] == 0.0);
}

TEST_CASE("csv: a row with the wrong number of cells", "[nn][csv]") {
  TempCsv file("Y,X1,X2\n0,2,1.5\n0,2.8,1.2\n0,1.5\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(file.path()); }),
             Catch::Contains("data.csv:4:") && Catch::Contains("expected 3 cells (Y, X1, X2), found 2"));

  TempCsv trailing("Y,X1\n0,2,\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(trailing.path()); }),
             Catch::Contains(":2:") && Catch::Contains("found 3"));

  // A line of many delimiters is refused once it is 1,024 cells past the header, not split whole:
  // sixteen million commas made as many strings first (about 65 times the file's size in memory).
  TempCsv commas("a\n" + std::string(1 << 20, ',') + "\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(commas.path()); }),
             Catch::Contains(":2:") && Catch::Contains("expected 1 cells (a), found more than 1025"));
  TempCsv unnamed_commas(std::string(1 << 20, ',') + "\n1\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(unnamed_commas.path()); }),
             Catch::Contains(":1:") && Catch::Contains("header: column 1 has an empty name"));
}

TEST_CASE("csv: a blank line in a one-column table is a missing value", "[nn][csv]") {
  // pandas writes a one-column NaN as an empty line; skipping it shifted every later row.
  TempCsv gap("y\n1\n\n3\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(gap.path()); }),
             Catch::Contains("data.csv:3:") && Catch::Contains("empty line in a one-column table (y)"));
  TempCsv spaces("y\n1\n  \r\n3\n");
  CHECK_THROWS_AS(read_csv(spaces.path()), std::invalid_argument);
  // At the end, and before the header, blank lines are still skipped; with several columns too.
  TempCsv end("\ny\n1\n3\n\n\n");
  CHECK(read_csv(end.path()).rows == std::vector<std::vector<double>>{{1}, {3}});
  TempCsv two("y,x\n1,2\n\n3,4\n");
  CHECK(read_csv(two.path()).rows.size() == 2);
}

TEST_CASE("csv: header problems and empty files", "[nn][csv]") {
  TempCsv empty("");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(empty.path()); }), Catch::Contains("empty"));
  TempCsv blank("\n  \r\n\n");
  CHECK_THROWS_AS(read_csv(blank.path()), std::invalid_argument);

  TempCsv header_only("Y,X1\n");
  const CsvTable t = read_csv(header_only.path());
  CHECK(t.columns.size() == 2);
  CHECK(t.rows.empty());

  TempCsv duplicate("X,Y,X\n1,2,3\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(duplicate.path()); }),
             Catch::Contains(":1:") && Catch::Contains("'X' appears twice"));
  TempCsv unnamed("X,,Y\n1,2,3\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(unnamed.path()); }), Catch::Contains("column 2"));
  TempCsv unterminated("\"X,Y\n1,2\n");
  CHECK_THAT(message_of<std::invalid_argument>([&] { read_csv(unterminated.path()); }),
             Catch::Contains(":1:") && Catch::Contains("unterminated quote"));
  TempCsv after_quote("\"X\"junk,Y\n1,2\n");
  CHECK_THROWS_AS(read_csv(after_quote.path()), std::invalid_argument);
}

TEST_CASE("csv: a missing file is a runtime_error naming the path and the system's reason", "[nn][csv]") {
  const fs::path missing = fs::temp_directory_path() / "chainrule_csv_test_no_such_dir" / "none.csv";
  CHECK_THAT(message_of<std::runtime_error>([&] { read_csv(missing); }),
             Catch::Contains("none.csv': No such file or directory"));
}

TEST_CASE("csv: index_of and column name the missing column and the available ones", "[nn][csv]") {
  const CsvTable t{{"Y", "X1", "X2"}, {{0, 2, 1.5}}};
  CHECK_THAT(message_of<std::out_of_range>([&] { (void)t.index_of("X3"); }),
             Catch::Contains("'X3'") && Catch::Contains("Y, X1, X2"));
  CHECK_THROWS_AS(t.column("x1"), std::out_of_range);  // names are case-sensitive
}

TEST_CASE("csv: select splits features and targets in the given order", "[nn][csv]") {
  const CsvTable t{{"Y", "X1", "X2"}, {{0, 2, 1.5}, {1, 2.5, 2}}};
  const auto data = select(t, {"X2", "X1"}, {"Y"});
  CHECK(data.features == std::vector<std::vector<double>>{{1.5, 2}, {2, 2.5}});
  CHECK(data.targets == std::vector<std::vector<double>>{{0}, {1}});
  CHECK(data.feature_names == std::vector<std::string>{"X2", "X1"});
  CHECK(data.target_names == std::vector<std::string>{"Y"});

  const auto unsupervised = select(t, {"X1"}, {});
  CHECK(unsupervised.targets == std::vector<std::vector<double>>{{}, {}});

  CHECK_THROWS_AS(select(t, {}, {"Y"}), std::invalid_argument);
  CHECK_THROWS_AS(select(t, {"X1", "X1"}, {"Y"}), std::invalid_argument);
  CHECK_THAT(message_of<std::invalid_argument>([&] { select(t, {"X1", "Y"}, {"Y"}); }),
             Catch::Contains("'Y' is both a feature and a target"));
  CHECK_THAT(message_of<std::out_of_range>([&] { select(t, {"X1"}, {"y"}); }), Catch::Contains("'y'"));
}

#ifdef CHAINRULE_SOURCE_DIR  // defined by the suite's CMake
TEST_CASE("csv: the shipped examples/data/lecture.csv holds the slides' five rows", "[nn][csv]") {
  const CsvTable t = read_csv(fs::path(CHAINRULE_SOURCE_DIR) / "examples" / "data" / "lecture.csv");
  CHECK(t.columns == std::vector<std::string>{"Y", "X1", "X2"});
  CHECK(t.rows == std::vector<std::vector<double>>{{0, 2, 1.5}, {0, 2.8, 1.2}, {0, 1.5, 1}, {1, 2.5, 2}, {0, 7.7, 3.5}});
}
#endif

// Found by a hand-crafted fuzz case: a directory surfaced as libstdc++'s "basic_filebuf::underflow
// error reading the file", naming neither read_csv nor the path.
TEST_CASE("csv: a directory is a runtime_error naming read_csv, the path and the reason", "[nn][csv]") {
  chainrule::testing::TempDir dir;
  const std::string msg = message_of<std::runtime_error>([&] { read_csv(dir.path()); });
  CHECK_THAT(msg, Catch::StartsWith("read_csv: error reading '" + dir.path().string() + "'") &&
                      Catch::Contains("Is a directory"));
}

// Found by a hand-crafted fuzz case: with CR-only line endings the whole file was one header line,
// and read_csv returned a table of 7 oddly named columns and no rows instead of an error.
TEST_CASE("csv: a carriage return not followed by a line feed is an error", "[nn][csv]") {
  TempCsv mac("Y,X1,X2\r0.1,2,1.5\r0.2,2.8,1.2\r");
  CHECK_THROWS_AS(read_csv(mac.path()), std::invalid_argument);
  CHECK_THROWS_WITH(read_csv(mac.path()), Catch::Contains("data.csv:1: carriage return in cell 3") &&
                                              Catch::Contains("CR-only line endings"));
  TempCsv in_row("a,b\r\n1,2\r\r\n");
  CHECK_THROWS_WITH(read_csv(in_row.path()), Catch::Contains("data.csv:2: carriage return in cell 2"));
  TempCsv quoted("a,b\r\n\"x\ry\",2\r\n");  // inside quotes it is text, as any other byte
  CHECK(read_csv(quoted.path(), {.columns = {"b"}}).rows == std::vector<std::vector<double>>{{2}});
}

// Found by a hand-crafted fuzz case: a bad cell was quoted whole in the message (a 1 MB cell, a
// 1 MB message) and with its control bytes raw.
TEST_CASE("csv: text from the file is cut and escaped in messages", "[nn][csv]") {
  TempCsv big("a\n" + std::string(1'000'000, 'x') + "\n");
  const std::string msg = message_of<std::invalid_argument>([&] { read_csv(big.path()); });
  CHECK_THAT(msg, Catch::Contains("column 'a': '" + std::string(80, 'x') + "...' is not a number"));
  CHECK(msg.size() < 400);

  TempCsv control("a\n1\x1b[2J\n");
  CHECK_THROWS_WITH(read_csv(control.path()), Catch::Contains("'1\\x1b[2J' is not a number"));

  std::string wide_header, short_row = "1\n";
  for (int c = 0; c < 1000; ++c) wide_header += (c ? ",c" : "c") + std::to_string(c);
  TempCsv wide(wide_header + "\n" + short_row);
  const std::string wide_msg = message_of<std::invalid_argument>([&] { read_csv(wide.path()); });
  CHECK_THAT(wide_msg, Catch::Contains("expected 1000 cells (c0, c1,") && Catch::Contains("c19, ... (1000 in all)), found 1"));
  CHECK(wide_msg.size() < 400);
}

// A source that never ends (a FIFO, a device) used to grow memory until the process was killed.
TEST_CASE("csv: more bytes than max_bytes is a length_error naming the path and the limit", "[nn][csv]") {
  const std::string content = "Y,X1\n0,1.5\n1,2.5\n";
  const TempCsv file(content);
  CsvOptions exact;
  exact.max_bytes = content.size();
  CHECK(read_csv(file.path(), exact).rows.size() == 2);
  CsvOptions small;
  small.max_bytes = content.size() - 1;
  CHECK_THAT(message_of<std::length_error>([&] { read_csv(file.path(), small); }),
             Catch::StartsWith("read_csv: '" + file.path().string() + "' holds more than " +
                                 std::to_string(content.size() - 1) + " bytes") &&
                 Catch::Contains("CsvOptions::max_bytes"));
  CHECK(CsvOptions{}.max_bytes == std::size_t{1} << 30);
  if (fs::exists("/dev/zero")) {
    CsvOptions mib;
    mib.max_bytes = std::size_t{1} << 20;
    CHECK_THAT(message_of<std::length_error>([&] { read_csv("/dev/zero", mib); }),
               Catch::Contains("'/dev/zero' holds more than 1048576 bytes"));
  }
}

// With ' ' as the delimiter, spaces were also padding: "1  2 3" read as three cells, the empty one
// dropped and 2 and 3 moved into the wrong columns (tabs as delimiter were already refused).
TEST_CASE("csv: a space delimiter separates at every space, as a tab does", "[nn][csv]") {
  const fs::path path = fs::temp_directory_path() / "chainrule_csv_space_test.csv";
  std::ofstream(path) << "a b c\n1 2 3\n  \n1  2 3\n";
  const std::string message = message_of<std::invalid_argument>([&] { read_csv(path, {.delimiter = ' '}); });
  fs::remove(path);
  CHECK_THAT(message, Catch::Contains("chainrule_csv_space_test.csv:4: expected 3 cells (a, b, c), found 4"));
  std::ofstream(path) << "a b c\n1 2 3\n\n4 5 6\n";
  const CsvTable t = read_csv(path, {.delimiter = ' '});
  fs::remove(path);
  CHECK(t.rows.size() == 2);
}

// CsvTable is a public aggregate: a hand-built ragged one threw libstdc++'s bare vector::at message.
TEST_CASE("csv: select and column on a hand-built ragged table name the row", "[nn][csv]") {
  const CsvTable t{{"a", "b"}, {{1.0, 2.0}, {3.0}}};
  CHECK_THAT(message_of<std::invalid_argument>([&] { select(t, {"b"}, {}); }),
             Catch::Contains("select: row 1 has 1 values but the table has 2 columns (a, b)"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { (void)t.column("a"); }),
             Catch::Contains("CsvTable::column: row 1 has 1 values"));
}
