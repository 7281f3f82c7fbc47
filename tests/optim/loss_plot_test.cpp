#include "optim/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/autograd/testing.h"

namespace fs = std::filesystem;
using chainrule::optim::LossPlotOptions;
using chainrule::optim::write_loss_csv;
using chainrule::optim::write_loss_svg;
using chainrule::testing::TempDir;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The number of "x,y" pairs in the points attribute of the polyline with the given class.
// (Plain find, not std::regex: libstdc++'s regex recurses per character and overflows the
// stack on a 2000-point attribute.)
std::size_t polyline_points(const std::string& svg, const std::string& cls) {
  const std::size_t tag = svg.find("<polyline class=\"" + cls + "\"");
  if (tag == std::string::npos) return 0;
  const std::size_t begin = svg.find("points=\"", tag) + 8, end = svg.find('"', begin);
  return static_cast<std::size_t>(std::count(svg.begin() + begin, svg.begin() + end, ','));
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

std::vector<double> decaying(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 2.0 * std::exp(-0.01 * static_cast<double>(i)) + 1e-4;
  return v;
}

}  // namespace

TEST_CASE("loss_plot: CSV content, with and without validation", "[optim][loss_plot]") {
  TempDir dir;
  write_loss_csv(dir / "loss.csv", {0.5, 0.25, 1e-05});
  CHECK(slurp(dir / "loss.csv") == "epoch,loss\n1,0.5\n2,0.25\n3,1e-05\n");

  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  write_loss_csv(dir / "both.csv", {1.55, 0.96, nan}, {2, 0.1, -inf});
  CHECK(slurp(dir / "both.csv") == "epoch,loss,validation_loss\n1,1.55,2\n2,0.96,0.1\n3,nan,-inf\n");
}

TEST_CASE("loss_plot: CSV errors", "[optim][loss_plot]") {
  TempDir dir;
  CHECK_THROWS_WITH(write_loss_csv(dir / "x.csv", {}), Catch::Contains("losses is empty"));
  CHECK_THROWS_WITH(write_loss_csv(dir / "x.csv", {1, 2}, {1}),
                    Catch::Contains("2 training losses but 1 validation losses"));
  CHECK_THROWS_WITH(write_loss_csv(dir / "no_such_dir" / "x.csv", {1}), Catch::Contains("no_such_dir"));
}

TEST_CASE("loss_plot: SVG has axes, log ticks, titles and one point per epoch", "[optim][loss_plot]") {
  TempDir dir;
  const std::vector<double> losses = {1.55, 0.96, 0.41, 0.1, 0.02, 0.001};
  write_loss_svg(dir / "loss.svg", losses, {.title = "lecture <network> & co"});
  const std::string svg = slurp(dir / "loss.svg");
  CHECK_THAT(svg, Catch::StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"500\""));
  CHECK_THAT(svg, Catch::EndsWith("</svg>\n"));
  CHECK(polyline_points(svg, "loss") == 6);
  CHECK_THAT(svg, Catch::Contains(">lecture &lt;network&gt; &amp; co</text>"));
  CHECK_THAT(svg, Catch::Contains(">epoch</text>"));
  CHECK_THAT(svg, Catch::Contains(">loss (log scale)</text>"));
  for (const char* tick : {">0.001</text>", ">0.01</text>", ">0.1</text>", ">1</text>"}) CHECK_THAT(svg, Catch::Contains(tick));
  for (const char* tick : {">1</text>", ">2</text>", ">6</text>"}) CHECK_THAT(svg, Catch::Contains(tick));
  CHECK(svg.find("legend") == std::string::npos);
  CHECK(svg.find("class=\"note\"") == std::string::npos);
  CHECK(count_of(svg, "<text") == count_of(svg, "</text>"));
  CHECK(count_of(svg, "<g") == count_of(svg, "</g>"));
}

TEST_CASE("loss_plot: linear axis on request or when a loss is <= 0", "[optim][loss_plot]") {
  TempDir dir;
  write_loss_svg(dir / "lin.svg", {0.5, 0.3, 0.2, 0.15}, {.log_y = false});
  const std::string lin = slurp(dir / "lin.svg");
  CHECK_THAT(lin, Catch::Contains(">loss</text>"));
  for (const char* tick : {">0.2</text>", ">0.3</text>", ">0.5</text>"}) CHECK_THAT(lin, Catch::Contains(tick));
  CHECK(lin.find("class=\"note\"") == std::string::npos);

  write_loss_svg(dir / "zero.svg", {2, 1, 0});
  const std::string zero = slurp(dir / "zero.svg");
  CHECK_THAT(zero, Catch::Contains("linear scale: some losses are &lt;= 0"));
  CHECK_THAT(zero, Catch::Contains(">0.0</text>") && Catch::Contains(">1.0</text>") && Catch::Contains(">2.0</text>"));
}

TEST_CASE("loss_plot: a narrow log range still gets several tick labels", "[optim][loss_plot]") {
  TempDir dir;
  write_loss_svg(dir / "narrow.svg", {0.8, 0.6, 0.5, 0.45});
  const std::string svg = slurp(dir / "narrow.svg");
  const std::size_t begin = svg.find("class=\"y-ticks\""), end = svg.find("</g>", begin);
  CHECK(count_of(svg.substr(begin, end - begin), "</text>") >= 3);
}

TEST_CASE("loss_plot: long histories are reduced to max_points, spikes kept", "[optim][loss_plot]") {
  TempDir dir;
  std::vector<double> losses = decaying(100000);
  losses[54321] = 50.0;  // a spike
  write_loss_svg(dir / "long.svg", losses);
  const std::string svg = slurp(dir / "long.svg");
  const std::size_t n = polyline_points(svg, "loss");
  CHECK(n <= 2000);
  CHECK(n >= 1000);
  CHECK_THAT(svg, Catch::Contains(">100000</text>"));  // x ticks 20000, 40000, ... 100000
  CHECK_THAT(svg, Catch::Contains(">10</text>"));      // the spike widens the y range past 10

  write_loss_svg(dir / "short.svg", decaying(2000));
  CHECK(polyline_points(slurp(dir / "short.svg"), "loss") == 2000);
  write_loss_svg(dir / "small.svg", decaying(300), {.max_points = 100});
  CHECK(polyline_points(slurp(dir / "small.svg"), "loss") <= 100);
}

TEST_CASE("loss_plot: validation line and legend", "[optim][loss_plot]") {
  TempDir dir;
  write_loss_svg(dir / "val.svg", decaying(50), {}, decaying(50));
  const std::string svg = slurp(dir / "val.svg");
  CHECK(polyline_points(svg, "loss") == 50);
  CHECK(polyline_points(svg, "validation_loss") == 50);
  CHECK_THAT(svg, Catch::Contains("class=\"legend\"") && Catch::Contains(">training</text>") &&
                      Catch::Contains(">validation</text>"));
  CHECK_THROWS_WITH(write_loss_svg(dir / "bad.svg", decaying(5), {}, decaying(4)),
                    Catch::Contains("5 training losses but 4 validation losses"));
}

TEST_CASE("loss_plot: NaN and infinity are skipped with a note", "[optim][loss_plot]") {
  TempDir dir;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  write_loss_svg(dir / "nan.svg", {1.0, nan, 0.5, inf, 0.25});
  const std::string svg = slurp(dir / "nan.svg");
  CHECK(polyline_points(svg, "loss") == 3);
  CHECK_THAT(svg, Catch::Contains("2 non-finite values (NaN or inf) not shown"));
  CHECK(svg.find("nan,") == std::string::npos);

  CHECK_THROWS_WITH(write_loss_svg(dir / "all.svg", {nan, inf}), Catch::Contains("no finite loss value"));
}

TEST_CASE("loss_plot: extreme but finite losses plot, or are refused by name", "[optim][loss_plot]") {
  // A loss decaying to a subnormal made the tick loop run 2^31 times (20 GB before bad_alloc); 1e308
  // and [-1e308, 1e308] cast infinities to int (undefined) or wrote NaN coordinates.
  TempDir dir;
  for (const std::vector<double>& losses : {std::vector<double>{1.0, 1e-310}, {1e308}, {1e-320, 1e300}, {5e-324}}) {
    write_loss_svg(dir / "x.svg", losses);
    const std::string svg = slurp(dir / "x.svg");
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
    CHECK(svg.size() < 100000);
  }
  CHECK_THROWS_WITH(write_loss_svg(dir / "wide.svg", {-1e308, 1e308}), Catch::Contains("too far apart"));
}

TEST_CASE("loss_plot: a single epoch and a constant history", "[optim][loss_plot]") {
  TempDir dir;
  write_loss_svg(dir / "one.svg", {0.3});
  const std::string one = slurp(dir / "one.svg");
  CHECK_THAT(one, Catch::Contains("<circle class=\"loss\""));
  CHECK(one.find("nan") == std::string::npos);
  write_loss_svg(dir / "flat.svg", {2, 2, 2}, {.log_y = false});
  const std::string flat = slurp(dir / "flat.svg");
  CHECK(polyline_points(flat, "loss") == 3);
  CHECK(flat.find("nan") == std::string::npos);
  CHECK(flat.find("inf") == std::string::npos);
  // Losses one ulp apart (a model stuck at ln 2): the tick loop counted from 2e16 by steps that
  // no longer changed its counter, and never returned. Drawn as a constant now, on either axis.
  for (bool log_y : {true, false}) {
    write_loss_svg(dir / "ulp.svg", {0.6931471805599453, 0.6931471805599454, 0.6931471805599453}, {.log_y = log_y});
    const std::string ulp = slurp(dir / "ulp.svg");
    CHECK(polyline_points(ulp, "loss") == 3);
    CHECK(ulp.find("nan") == std::string::npos);
    CHECK(ulp.size() < 100000);
  }
}

TEST_CASE("loss_plot: SVG argument errors", "[optim][loss_plot]") {
  TempDir dir;
  CHECK_THROWS_WITH(write_loss_svg(dir / "x.svg", {}), Catch::Contains("losses is empty"));
  CHECK_THROWS_WITH(write_loss_svg(dir / "x.svg", {1}, {.width = 100}), Catch::Contains("100x500"));
  CHECK_THROWS_AS(write_loss_svg(dir / "x.svg", {1}, {.max_points = 1}), std::invalid_argument);
  CHECK_THROWS_AS(write_loss_svg(dir / "missing" / "x.svg", {1}), std::runtime_error);
}
