// docs/tutorial.md says that every number in it comes from one run of examples/lecture_trace.cpp.
// This test holds it to that: every table row and every line of every plain ``` block in the
// tutorial must be a line that lecture_trace prints now, in one of the two runs the tutorial shows
// (markdown tables with --tensor --custom-op, and the terminal output with --input-gradients). A
// change to the trace's format, to a rule, or to the example's source that moves a number or a
// line makes the tutorial fail here instead of going stale.
//
// Tables that are not program output (the slides' weights and the slides' rounded errors) carry
// the marker line kTypedIn directly above them; nothing else is exempt. Source paths the program
// prints are compared relative to the source tree, as the tutorial writes them.
//
// Compiled only where the examples are built (not in the ThreadSanitizer build).
#ifdef CHAINRULE_LECTURE_TRACE

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {

constexpr const char* kTypedIn = "<!-- typed in from the slides, not program output -->";

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  return s;
}

// The lines a command prints on stdout, right-trimmed, with the source tree's path removed.
std::vector<std::string> output_lines(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  REQUIRE(pipe != nullptr);
  std::string text;
  std::array<char, 4096> buffer;
  while (const size_t n = fread(buffer.data(), 1, buffer.size(), pipe.get())) text.append(buffer.data(), n);
  REQUIRE(pclose(pipe.release()) == 0);
  const std::string prefix = std::string(CHAINRULE_SOURCE_DIR) + "/";
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    for (size_t at; (at = line.find(prefix)) != std::string::npos;) line.erase(at, prefix.size());
    lines.push_back(trim_right(line));
  }
  return lines;
}

struct Claims {
  std::vector<std::string> lines;  // what the tutorial shows as program output
  int exempt_tables = 0;           // tables under kTypedIn
};

// Table rows, and the lines of plain ``` blocks (not ```cpp or ```sh: those are code to run).
Claims claimed_output(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  Claims claims;
  bool in_output_block = false, in_code_block = false, exempt = false;
  std::string previous;
  for (std::string line; std::getline(in, line);) {
    line = trim_right(line);
    if (line.rfind("```", 0) == 0) {
      if (in_output_block || in_code_block) {
        in_output_block = in_code_block = false;
      } else {
        (line == "```" ? in_output_block : in_code_block) = true;
      }
    } else if (in_output_block) {
      claims.lines.push_back(line);
    } else if (!in_code_block && line.rfind("|", 0) == 0) {
      if (previous.rfind("|", 0) != 0) {  // a table's first row
        exempt = previous == kTypedIn;
        claims.exempt_tables += exempt;
      }
      if (!exempt) claims.lines.push_back(line);
    }
    previous = line;
  }
  REQUIRE_FALSE(in_output_block);
  REQUIRE_FALSE(in_code_block);
  return claims;
}

}  // namespace

TEST_CASE("tutorial: every table row and output line is what examples/lecture_trace prints", "[docs]") {
  const std::string program = CHAINRULE_LECTURE_TRACE;
  std::set<std::string> printed;
  for (const char* flags : {" --markdown --fixed 3 --tensor --custom-op", " --input-gradients"})
    for (std::string& line : output_lines(program + flags)) printed.insert(std::move(line));

  const Claims claims = claimed_output(std::string(CHAINRULE_SOURCE_DIR) + "/docs/tutorial.md");
  // The two slide tables, and well over a hundred lines of output: a parser that found nothing, or
  // a marker spread over tables it should not cover, fails here.
  CHECK(claims.exempt_tables == 2);
  CHECK(claims.lines.size() >= 100);

  std::string missing;
  for (const std::string& line : claims.lines)
    if (!line.empty() && !printed.count(line)) missing += "\n" + line;
  INFO("tutorial lines that lecture_trace does not print:" << missing);
  CHECK(missing.empty());
}

#endif  // CHAINRULE_LECTURE_TRACE
