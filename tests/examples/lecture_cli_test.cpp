// The two lecture programs' command lines: other data is standardised with its own mean and sd
// (it was given the slides' values, and compared with the slides' numbers), and bad arguments end
// in the usage and exit code 2 (--fixed x terminated on an uncaught std::stoi exception).
#if defined(CHAINRULE_LECTURE) && defined(CHAINRULE_LECTURE_TRACE)
#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>

#include <catch2/catch.hpp>

namespace {

struct Run {
  std::string out;  // stdout and stderr
  int status = -1;  // exit code
};

Run run(const std::string& command) {
  Run r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer;
  while (const size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) r.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST_CASE("lecture: --data standardises the given rows with their own mean and sd", "[examples]") {
  const std::string csv = "lecture_cli_test_data.csv";
  std::ofstream(csv) << "Y,X1,X2\n100,200,5\n110,210,6\n120,190,4\n130,220,7\n";
  const Run r = run(std::string(CHAINRULE_LECTURE) + " --data " + csv);
  std::remove(csv.c_str());
  CHECK_THAT(r.out, Catch::Contains("mean X1 205.0000, X2 5.5000; sd X1 12.9099, X2 1.2910: fitted on these 4 rows"));
  CHECK_THAT(r.out, Catch::Contains("  100    200     5   -0.39  -0.39"));
  CHECK_THAT(r.out, !Catch::Contains("(slides"));
}

TEST_CASE("lecture: data the network cannot fit stops at the epoch limit and says the goal was missed", "[examples]") {
  // Two rows with the same inputs and different targets: 1/2 sum (Output - Y)^2 cannot go below
  // 0.25. The line said "(1/2 sum (Output - Y)^2 < 0.0005)" as if the goal had been met.
  const std::string csv = "lecture_cli_test_unfit.csv";
  std::ofstream(csv) << "Y,X1,X2\n0,1,2\n1,1,2\n0,3,1\n";
  const Run r = run(std::string(CHAINRULE_LECTURE) + " --compact --data " + csv);
  std::remove(csv.c_str());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("maximum number of epochs reached (1/2 sum (Output - Y)^2 = 0.25") &&
                        Catch::Contains(", goal < 0.0005)"));
  // The slides' data meets the goal: its loss shows as below it (0.0005 with 4 digits read as equal).
  const Run met = run(std::string(CHAINRULE_LECTURE) + " --compact");
  CHECK_THAT(met.out, Catch::Contains("loss below the threshold (1/2 sum (Output - Y)^2 = 0.0004999"));
}

#ifdef CHAINRULE_REGRESSION
TEST_CASE("regression: an empty --plot file name is refused, not taken as no plot", "[examples]") {
  const Run r = run(std::string(CHAINRULE_REGRESSION) + " --plot ''");
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("--plot needs a file name"));
}
#endif

TEST_CASE("lecture and lecture_trace: bad arguments print the usage and exit with 2", "[examples]") {
  const Run help = run(std::string(CHAINRULE_LECTURE) + " --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::StartsWith("usage: lecture"));
  const Run missing = run(std::string(CHAINRULE_LECTURE) + " --plot");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.out, Catch::Contains("lecture: --plot needs a file name") && !Catch::Contains("lecture: lecture:"));
  // An empty file name was taken as no option at all: exit 0 and nothing written.
  for (const char* program : {CHAINRULE_LECTURE, CHAINRULE_LECTURE_TRACE}) {
    const Run empty = run(std::string(program) + " --dot ''");
    INFO(program);
    CHECK(empty.status == 2);
    CHECK_THAT(empty.out, Catch::Contains("--dot needs a file name"));
  }
  for (const char* bad : {"x", "40", "-1"}) {
    const Run r = run(std::string(CHAINRULE_LECTURE_TRACE) + " --fixed " + bad);
    INFO(bad);
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::StartsWith(std::string("lecture_trace: --fixed ") + bad + ": the number of decimals") &&
                          Catch::Contains("usage: lecture_trace"));
  }
  const Run trace_help = run(std::string(CHAINRULE_LECTURE_TRACE) + " --help");
  CHECK(trace_help.status == 0);
  CHECK_THAT(trace_help.out, Catch::StartsWith("usage: lecture_trace"));
  const Run unknown = run(std::string(CHAINRULE_LECTURE_TRACE) + " --bogus");
  CHECK(unknown.status == 2);
  CHECK_THAT(unknown.out, Catch::StartsWith("lecture_trace: unknown argument '--bogus'"));
  // The CSV beside the plot is FILE.csv: a .csv plot would have been overwritten by it.
  const Run csv_plot = run(std::string(CHAINRULE_LECTURE) + " --compact --plot loss.csv");
  CHECK(csv_plot.status == 2);
  CHECK_THAT(csv_plot.out, Catch::Contains("--plot loss.csv: the loss table is written beside the plot"));
}

// A DOT file that cannot be written: an error and exit code 2 (both programs said "wrote" and exited 0).
TEST_CASE("lecture and lecture_trace: an unwritable --dot path is an error", "[examples]") {
  for (const std::string program : {CHAINRULE_LECTURE, CHAINRULE_LECTURE_TRACE}) {
    INFO(program);
    const Run r = run(program + " --dot /nonexistent-dir/graph.dot");
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::Contains("write_dot: cannot open '/nonexistent-dir/graph.dot' for writing: No such file"));
    CHECK_THAT(r.out, !Catch::Contains("wrote /nonexistent-dir"));
  }
}
#endif
