// examples/reverse: the tiny Transformer learns to reverse digit sequences it has never seen.
#include <catch2/catch.hpp>

#include <vector>

#include "examples/reverse_model.h"

using namespace chainrule;
using namespace chainrule::examples::reverse;

TEST_CASE("training: a two-layer Transformer encoder learns to reverse digit sequences", "[training][transformer]") {
  Reverser model(1);
  Generator data(7);
  std::vector<double> losses;
  train(model, 300, 64, data, 100, [&](int64_t, double l) { losses.push_back(l); });
  REQUIRE(losses.size() == 4);  // steps 0, 100, 200 and 299
  CHECK(losses.front() > 2.0);  // about ln 10 at the start
  CHECK(losses.back() < 0.01);
  Generator held_out(99);
  const Batch test = sequences(500, held_out);
  CHECK(accuracy(model, test) >= 0.99);
  // Before training the same model is at chance.
  Reverser fresh(1);
  CHECK(accuracy(fresh, test) < 0.3);
}
