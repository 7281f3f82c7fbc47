// Compaction of the Scalar tape (ScalarTape::compact): a graph kept alive across the iterations of
// a loop must not make the tape grow with every iteration, and the kept graph must mean exactly
// what it meant before its records moved: the same values, gradients, views, labels and locations,
// through every handle that named it (copied, dropped, read or swept after the move).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/scalar.h"
#include "autograd/trace.h"

using namespace chainrule;
using detail::scalar_tape_stats;

namespace {

// A small graph of w and x: tanh(w * x + 0.5) * w, and its derivative in w.
Scalar small(const Scalar& w, double x) { return tanh(w * x + 0.5) * w; }
double d_small(double w, double x) {
  const double t = std::tanh(w * x + 0.5);
  return (1.0 - t * t) * x * w + t;
}

// The tape's capacity after `iterations` of `body`, which must keep its memory flat.
template <class Body>
std::size_t capacity_after(int iterations, Body body) {
  for (int i = 0; i < iterations; ++i) body(i);
  return scalar_tape_stats().capacity;
}

// Runs `body` until the tape has compacted `times` more times (a full tape with a graph alive
// compacts: a few thousand records at most). scalar_tape_stats scans the tape, so it is asked only
// now and then; without compaction the bound stops the loop.
template <class Body>
void until_compacted(std::size_t times, Body body) {
  const std::size_t target = scalar_tape_stats().compactions + times;
  int i = 0;
  while (scalar_tape_stats().compactions < target) {
    REQUIRE(i < 50000);
    for (int k = 0; k < 64; ++k) body(i++);
  }
}

}  // namespace

TEST_CASE("Scalar tape: a graph kept across a training loop does not make it grow",
          "[autograd][scalar][compaction]") {
  Scalar w = Scalar::leaf(0.3);
  const std::size_t compactions = scalar_tape_stats().compactions;
  // Kept for later (a prediction before training, say), never swept during the loop.
  const Scalar before = small(w, 0.7);
  const double before_value = before.value();
  const double w0 = w.value();
  auto step = [&](int i) {
    const Scalar loss = small(w, 0.01 * (i % 7));
    loss.backward();
    w.zero_grad();
  };
  const std::size_t warm = capacity_after(5000, step);
  const std::size_t later = capacity_after(100000, step);
  CHECK(later == warm);
  CHECK(scalar_tape_stats().compactions > compactions);
  // The kept graph, moved many times, still holds its value and its gradient at w0.
  CHECK(before.value() == before_value);
  before.backward();
  CHECK(w.grad() == Approx(d_small(w0, 0.7)).epsilon(1e-14));
}

TEST_CASE("Scalar tape: a handle kept from one iteration into the next does not make it grow",
          "[autograd][scalar][compaction]") {
  const Scalar w = Scalar::leaf(-0.4);
  SECTION("an evaluation loop, no backward (the README's `Scalar out;` outside the loop)") {
    Scalar out;
    int n = 0;
    auto body = [&](int) { out = small(w, 0.001 * n++); };
    const std::size_t warm = capacity_after(5000, body);
    CHECK(capacity_after(100000, body) == warm);
    // The last graph is whole: its gradient is the derivative at the last x.
    out.backward();
    CHECK(w.grad() == Approx(d_small(w.value(), 0.001 * (n - 1))).epsilon(1e-14));
  }
  SECTION("a graph retained for a second backward, swept again in the next iteration") {
    Scalar previous = small(w, 0.0);
    previous.backward({.retain_graph = true});
    double expected = d_small(w.value(), 0.0);
    double x_previous = 0.0;
    int n = 1;
    auto body = [&](int) {
      const double x = 0.001 * n++;
      const Scalar current = small(w, x);
      current.backward({.retain_graph = true});
      previous.backward();  // its second backward: frees it
      expected += d_small(w.value(), x) + d_small(w.value(), x_previous);
      previous = current;
      x_previous = x;
    };
    const std::size_t warm = capacity_after(5000, body);
    CHECK(capacity_after(50000, body) == warm);
    CHECK(w.grad() == Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("Scalar tape: a moved graph keeps its values, gradients, labels, locations and custom ops",
          "[autograd][scalar][compaction]") {
  Scalar w = Scalar::leaf(0.8);
  Scalar v = Scalar::leaf(-1.3);
  Scalar frozen = Scalar::leaf(2.0, false);
  frozen.set_label("X1");
  const Scalar captured = w * v;  // an interior node captured by a custom op's backward
  auto build = [&] {
    const TrackLocationsGuard locations;
    const std::vector<Scalar> a = {w, v, frozen};
    const std::vector<double> b = {0.5, -2.0, 0.25};
    Scalar h = sigmoid(dot(a, std::span<const double>(b), v * 0.5));
    h.set_label("h");
    const Scalar cube = custom_op(
        "cube", {h}, [](std::span<const double> x) { return x[0] * x[0] * x[0]; },
        [captured](double grad, std::span<const double> x, double) {
          return std::vector<double>{grad * 3.0 * x[0] * x[0] + 0.0 * captured.value()};
        });
    return pow(cube + frozen * w, v) / (h + 1.0);
  };
  Scalar kept = build();
  Scalar copy = kept;  // two handles of the old place
  const std::vector<ScalarNodeView> view = graph_view(kept);
  const double value = kept.value();
  const std::vector<Scalar> reference = grad({kept}, {w, v}, {}, {.retain_graph = true});

  // Fill the tape with dead graphs until it compacts (at least twice), with the kept graph alive.
  until_compacted(2, [&](int i) {
    const Scalar dead = small(w, 0.5) + small(v, 0.25);
    if (i % 2 == 0) dead.backward();
  });
  CHECK(scalar_tape_stats().moved_handles >= 2);  // kept, copy (and the capture) not used since
  {
    const Scalar third = copy;  // a copy of a handle that still names the old place
    CHECK(third.value() == value);
  }

  const std::vector<ScalarNodeView> after = graph_view(kept);
  REQUIRE(after.size() == view.size());
  for (std::size_t k = 0; k < view.size(); ++k) {
    INFO("node " << k << ": " << view[k].op);
    CHECK(after[k].op == view[k].op);
    CHECK(after[k].label == view[k].label);
    CHECK(after[k].value == view[k].value);
    CHECK(after[k].inputs == view[k].inputs);
    CHECK(after[k].local == view[k].local);
    CHECK(std::string(after[k].where.file_name()) == view[k].where.file_name());
    CHECK(after[k].where.line() == view[k].where.line());
  }
  CHECK_NOTHROW(captured.grad());  // its handle followed too (the capture kept it alive)
  const std::vector<Scalar> moved = grad({copy}, {w, v}, {}, {.retain_graph = true});
  for (std::size_t k = 0; k < reference.size(); ++k) CHECK(moved[k].value() == reference[k].value());
  // Recording on top of the moved graph, and sweeping through both.
  w.zero_grad();  // the dead graphs' backwards accumulated here
  v.zero_grad();
  const Scalar more = kept * kept;
  more.backward();
  CHECK(w.grad() == Approx(2.0 * value * reference[0].value()).epsilon(1e-14));
  CHECK(v.grad() == Approx(2.0 * value * reference[1].value()).epsilon(1e-14));
  // The kept graph was swept by that backward: freed, as without a compaction.
  CHECK_THROWS_AS(kept.backward(), std::logic_error);
}

TEST_CASE("Scalar tape: handles of records a compaction dropped are stale, as after a reset",
          "[autograd][scalar][compaction]") {
  Scalar w = Scalar::leaf(0.6);
  const Scalar keep_alive = small(w, 0.3);  // so that the tape compacts instead of resetting
  Scalar swept = small(w, 0.9);
  swept.backward();  // freed, and read by no kept record: dropped at the next compaction
  const double value = swept.value();
  until_compacted(1, [&](int) { small(w, 0.1).backward(); });
  CHECK(swept.value() == value);  // a number still
  CHECK_THROWS_AS(swept.grad(), std::logic_error);
  const Scalar uses = swept * w;  // recorded with swept as a stale operand
  CHECK_THROWS_WITH(uses.backward(), Catch::Matchers::Contains("whose own graph is gone"));
  w.zero_grad();
  keep_alive.backward();
  CHECK(w.grad() == Approx(d_small(0.6, 0.3)).epsilon(1e-14));
}

TEST_CASE("Scalar tape: a moved handle dropped on another thread is counted where it moved",
          "[autograd][scalar][compaction]") {
  const Scalar w = Scalar::leaf(0.2);
  Scalar kept = small(w, 0.4);
  until_compacted(1, [&](int) { small(w, 0.1).backward(); });
  // The only handle, still naming the old place, dropped on another thread: once that count is
  // applied, no graph is alive and the tape is reused whole (it does not grow).
  std::thread([h = std::move(kept)]() mutable { h = Scalar(); }).join();
  const std::size_t capacity = scalar_tape_stats().capacity;
  for (int i = 0; i < 50000; ++i) {
    const Scalar t = small(w, 0.2);
    (void)t;
  }
  CHECK(scalar_tape_stats().capacity == capacity);
  CHECK(scalar_tape_stats().live_records == 0);
  CHECK(scalar_tape_stats().moved_handles == 0);
}

TEST_CASE("Scalar tape: a leaf used before and after a compaction sums its gradient as without one",
          "[autograd][scalar][compaction]") {
  // The leaf's Leaf record moves with the kept graph and the leaf goes on entering through it; a
  // second Leaf record would sum its contributions in another order (1 + 1e-16 + 1e-16 rounds
  // differently), as a compaction fuzzer found.
  auto run = [](bool compact) {
    Scalar x = Scalar::leaf(1.0);
    const Scalar a = x * 1.0, b = x * 1e-16;
    const Scalar kept = a + b;
    if (compact) REQUIRE(detail::compact_scalar_tape());
    const Scalar y = kept + x * 1e-16;
    y.backward();
    return x.grad();
  };
  CHECK(run(true) == run(false));
}

TEST_CASE("Scalar tape: a moved graph's backward is still known to have started at its root",
          "[autograd][scalar][compaction]") {
  const Scalar w = Scalar::leaf(1.5);
  const Scalar c = w * w;
  c.backward({.retain_graph = true});
  REQUIRE(detail::compact_scalar_tape());
  CHECK(trace(c).from_root);
}

TEST_CASE("Scalar tape: copies made on another thread keep a moved graph, after many generations too",
          "[autograd][scalar][compaction]") {
  Scalar x = Scalar::leaf(2.0);
  SECTION("a copy counted in the inbox when a compaction runs") {
    Scalar h = x * x;
    Scalar copy;
    std::thread([&] { copy = h; }).join();  // its +1 waits in this tape's inbox
    h = Scalar();                           // this thread's count: 0
    REQUIRE(detail::compact_scalar_tape());
    copy.backward();
    CHECK(x.grad() == 4.0);
  }
  SECTION("a copy of a handle moved 70,000 times: its generation's block ended long ago") {
    Scalar h = x * x;
    for (int i = 0; i < 70000; ++i) REQUIRE(detail::compact_scalar_tape());  // one generation each
    Scalar copy;
    std::thread([&] { copy = h; }).join();
    h = Scalar();
    (void)(x * 1.0);  // an op: the inbox is applied
    copy.backward();
    CHECK(x.grad() == 4.0);
  }
}
