#include "optim/progress.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

using chainrule::optim::format_duration;
using chainrule::optim::Progress;
using chainrule::optim::ProgressMode;
using chainrule::optim::ProgressOptions;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  double t = 100.0;
  std::function<double()> fn() {
    return [this] { return t; };
  }
};

}  // namespace

TEST_CASE("progress: lines mode every N epochs with rate and ETA", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  Progress p(100, {.mode = ProgressMode::Lines, .out = &out, .every_n = 25, .clock = clock.fn()});
  CHECK(p.mode() == ProgressMode::Lines);
  for (std::size_t epoch = 1; epoch <= 60; ++epoch) {
    clock.t += 0.5;  // 2 epochs per second
    p.update(epoch, 1.0 / static_cast<double>(epoch));
  }
  p.finish("stopped early");
  CHECK(out.str() ==
        "epoch 25/100 loss 0.04 (2 epochs/s, ETA 0:38)\n"
        "epoch 50/100 loss 0.02 (2 epochs/s, ETA 0:25)\n"
        "finished at epoch 60/100, loss 0.0166667, 30.0 s (2 epochs/s): stopped early\n");
}

TEST_CASE("progress: lines mode by time prints the first update and then once per interval", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  Progress p(0, {.mode = ProgressMode::Lines, .out = &out, .interval_seconds = 1.0, .clock = clock.fn()});
  for (std::size_t epoch = 1; epoch <= 10; ++epoch) {
    clock.t += 0.25;
    p.update(epoch, 0.5);
  }
  // Printed at t = 0.25 (first), 1.25 (epoch 5), 2.25 (epoch 9); total unknown: no "/total", no ETA.
  CHECK(out.str() ==
        "epoch 1 loss 0.5 (4 epochs/s)\n"
        "epoch 5 loss 0.5 (4 epochs/s)\n"
        "epoch 9 loss 0.5 (4 epochs/s)\n");
}

TEST_CASE("progress: quiet prints nothing, not even on finish", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  {
    Progress p(10, {.mode = ProgressMode::Quiet, .out = &out, .clock = clock.fn()});
    for (std::size_t epoch = 1; epoch <= 10; ++epoch) p.update(epoch, 1.0);
    p.finish("done");
  }
  CHECK(out.str().empty());
  Progress no_stream(10, {.mode = ProgressMode::Quiet, .out = nullptr});
  no_stream.update(1, 0.0);
}

TEST_CASE("progress: auto picks lines for a stream that is not a terminal", "[optim][progress]") {
  std::ostringstream out;
  Progress p(10, {.out = &out});
  CHECK(p.mode() == ProgressMode::Lines);
}

TEST_CASE("progress: bar mode redraws one line in place, at most every redraw_seconds", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  Progress p(8, {.mode = ProgressMode::Bar, .out = &out, .redraw_seconds = 0.1, .clock = clock.fn()});
  for (std::size_t epoch = 1; epoch <= 8; ++epoch) {
    clock.t += 0.04;  // 25 epochs/s: draws at epochs 1 (first), 4, 7 (>= 0.1 s apart) and 8 (last)
    p.update(epoch, 0.5);
  }
  const std::string s = out.str();
  CHECK(std::count(s.begin(), s.end(), '\r') == 4);
  CHECK(s.find('\n') == std::string::npos);
  CHECK_THAT(s, Catch::Contains("\r[##########..........] 4/8  50% loss 0.5 25 epochs/s ETA 0:00\r"));
  CHECK_THAT(s, Catch::EndsWith("[####################] 8/8 100% loss 0.5 25 epochs/s ETA 0:00"));
  p.finish("epochs done");
  CHECK_THAT(out.str(), Catch::EndsWith("\nfinished at epoch 8/8, loss 0.5, 0.3 s (25 epochs/s): epochs done\n"));
}

TEST_CASE("progress: bar blanks the rest of a longer previous line", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  Progress p(0, {.mode = ProgressMode::Bar, .out = &out, .redraw_seconds = 0, .clock = clock.fn()});
  clock.t += 1;
  p.update(1, 0.123456);
  clock.t += 1;
  p.update(2, 0.5);
  CHECK(out.str() == "\r1 loss 0.123456 1 epochs/s\r2 loss 0.5 1 epochs/s     ");
}

TEST_CASE("progress: finish without updates, twice, and update after finish", "[optim][progress]") {
  std::ostringstream out;
  FakeClock clock;
  Progress p(10, {.mode = ProgressMode::Lines, .out = &out, .clock = clock.fn()});
  clock.t += 2;
  p.finish("nothing to do");
  p.finish("again");
  CHECK(out.str() == "finished before the first epoch, 2.0 s: nothing to do\n");
  CHECK_THROWS_AS(p.update(1, 0.1), std::logic_error);
}

TEST_CASE("progress: caller mistakes throw", "[optim][progress]") {
  std::ostringstream out;
  Progress p(10, {.mode = ProgressMode::Lines, .out = &out, .every_n = 1});
  p.update(0, 1.0);  // the loss before training
  p.update(3, 0.9);
  CHECK_THROWS_WITH(p.update(3, 0.8), Catch::Contains("epoch 3 does not follow the previous epoch 3"));
  CHECK_THROWS_WITH(p.update(11, 0.8), Catch::Contains("epoch 11 exceeds total_epochs 10"));
  CHECK_THROWS_AS(Progress(10, {.mode = ProgressMode::Lines, .out = nullptr}), std::invalid_argument);
  CHECK_THROWS_AS(Progress(10, {.mode = ProgressMode::Lines, .out = &out, .interval_seconds = -1}),
                  std::invalid_argument);
}

TEST_CASE("progress: format_duration", "[optim][progress]") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(9.6) == "0:10");
  CHECK(format_duration(75) == "1:15");
  CHECK(format_duration(3725) == "1:02:05");
  CHECK(format_duration(-1) == "?");
  CHECK(format_duration(std::numeric_limits<double>::infinity()) == "?");
  CHECK(format_duration(1e19) == "?");  // beyond a long long of seconds (was "-30:-8")
  CHECK(format_duration(8e18) == "2222222222222222:13:20");
}
