// AdaptiveMaxPool2d: values and gradients against plain loops (ties included: the first maximum
// takes the gradient), torch's windows, the finite-difference checks of first and second
// derivatives, printing and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/data.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "nn/loss.h"
#include "nn/sequential.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;

namespace {

using V = const std::vector<Tensor>&;

TensorOptions f64(bool requires_grad = false) { return TensorOptions(DType::float64).requires_grad(requires_grad); }

Tensor numbers(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  testing::Numbers rng(seed);
  return from_vector(rng.uniform_vector(static_cast<std::size_t>(shape.numel()), -1, 1), shape, f64(requires_grad));
}

// Small whole numbers 0..3: a window of a few holds ties.
Tensor tied_numbers(const Shape& shape, uint64_t seed) {
  testing::Numbers rng(seed);
  std::vector<double> v = rng.uniform_vector(static_cast<std::size_t>(shape.numel()), 0, 4);
  for (double& e : v) e = std::floor(e);
  return from_vector(v, shape, f64());
}

std::size_t at(int64_t i) { return static_cast<std::size_t>(i); }

// One pooling window's cells as flat indices into x, in row-major order (-1 for a padding cell).
struct Window {
  std::vector<int64_t> cells;
};

// The maximum of a window (padding -inf) and where the gradient goes: the first maximum in the
// order of `cells` (row-major), replaced only by a larger value, as torch's kernels.
std::pair<double, int64_t> first_max(const std::vector<double>& v, const Window& win) {
  double best = -std::numeric_limits<double>::infinity();
  int64_t where = -1;
  for (int64_t cell : win.cells) {
    const double e = cell < 0 ? -std::numeric_limits<double>::infinity() : v[at(cell)];
    if (where < 0 || e > best) best = e, where = cell;
  }
  return {best, where};
}

// torch's adaptive windows over planes [h, w] into [oh, ow]: rows floor(i h / oh) .. ceil((i + 1) h / oh) - 1.
std::vector<Window> adaptive_windows(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  std::vector<Window> out;
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        Window win;
        for (int64_t r = i * h / oh; r < ((i + 1) * h + oh - 1) / oh; ++r)
          for (int64_t c = j * w / ow; c < ((j + 1) * w + ow - 1) / ow; ++c) win.cells.push_back((plane * h + r) * w + c);
        out.push_back(win);
      }
  return out;
}

// A max pool's values and its input's gradient for the upstream gradient `g`, by the windows
// (the gradient of overlapping windows adds up), against the op's forward and backward.
void check_max_pool(const std::function<Tensor(const Tensor&)>& pool, const Tensor& input, const std::vector<Window>& wins) {
  const Tensor x = input.detach().set_requires_grad(true);
  const Tensor y = pool(x);
  REQUIRE(y.numel() == static_cast<int64_t>(wins.size()));
  const Tensor g = numbers(y.shape(), 99);
  const std::vector<double> v = x.to_vector(), ys = y.to_vector(), gs = g.to_vector();
  std::vector<double> want_grad(v.size(), 0.0);
  for (std::size_t o = 0; o < wins.size(); ++o) {
    const auto [best, where] = first_max(v, wins[o]);
    CHECK(ys[o] == best);
    if (where >= 0) want_grad[at(where)] += gs[o];
  }
  sum(y * g).backward();
  const std::vector<double> got = x.grad().to_vector();
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(got[i] == Approx(want_grad[i]).epsilon(1e-14).margin(1e-15));
}

}  // namespace

TEST_CASE("nn: adaptive_max_pool2d takes torch's windows' maxima, the gradient to each first maximum") {
  const Tensor x = tied_numbers({2, 2, 5, 7}, 14);
  for (const std::array<int64_t, 2> out : {std::array<int64_t, 2>{3, 2}, {5, 7}, {1, 1}, {2, 3}, {4, 1}, {3, 7},
                                           {5, 3}, {1, 7}, {6, 8}}) {
    INFO("output [" << out[0] << ", " << out[1] << "]");
    const Tensor y = nn::AdaptiveMaxPool2d(nn::Size2d(out[0], out[1])).forward(x);
    CHECK(y.shape() == Shape{2, 2, out[0], out[1]});
    check_max_pool([out](const Tensor& t) { return nn::adaptive_max_pool2d(t, out); }, x,
                   adaptive_windows(4, 5, 7, out[0], out[1]));
  }
  // The convention by hand, where the windows overlap (3 into 2: rows 0-1 and 1-2, columns the
  // same): [[0, 5], [5, 0]] gives the gradient to (0, 1), the first 5 in row-major order, not to
  // (1, 0) (the first in column-major order) nor half to each (max over dims shares a tie).
  const Tensor z = tensor({{{{0.0, 5, 0}, {5, 0, 0}, {0, 0, 0}}}}, f64(true));
  const Tensor y = nn::adaptive_max_pool2d(z, {2, 2});
  CHECK(y.to_vector() == std::vector<double>{5, 5, 5, 0});
  sum(y).backward();
  CHECK(z.grad().to_vector() == std::vector<double>{0, 2, 0, 1, 1, 0, 0, 0, 0});
  // A NaN is its window's maximum.
  const Tensor with_nan = tensor({{{{1.0, NAN, 0}, {3.0, 2.0, 0}}}}, f64());
  const std::vector<double> pooled = nn::adaptive_max_pool2d(with_nan, {1, 2}).to_vector();
  CHECK(std::isnan(pooled[0]));
  CHECK(std::isnan(pooled[1]));
  CHECK(nn::adaptive_max_pool2d(with_nan, {2, 1}).to_vector()[1] == 3.0);
  CHECK(nn::AdaptiveMaxPool2d(nn::Size2d(2, 3)).to_string() == "AdaptiveMaxPool2d(output_size=[2, 3])");
  CHECK(nn::AdaptiveMaxPool2d(5).to_string() == "AdaptiveMaxPool2d(output_size=[5, 5])");
  CHECK_THROWS_WITH(nn::AdaptiveMaxPool2d(nn::Size2d(2, 0)),
                    Contains("AdaptiveMaxPool2d: the output size must be >= 1 in each dim, got [2, 0]"));
  CHECK_THROWS_WITH(nn::adaptive_max_pool2d(zeros({2, 3, 8}), {1, 1}),
                    Contains("adaptive_max_pool2d: expected an image batch [N, C, H, W], got [2, 3, 8]"));
  CHECK_THROWS_WITH(nn::adaptive_max_pool2d(zeros({1, 1, 3, 0}), {1, 1}),
                    Contains("adaptive_max_pool2d: the input [1, 1, 3, 0] has an empty image (H and W must be >= 1)"));
}

TEST_CASE("nn: adaptive_max_pool2d's gradients pass the finite-difference checks, first and second order") {
  const Tensor leaf = numbers({1, 2, 5, 4}, 15, true);
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool2d(in[0], {3, 3}); }, {leaf});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool2d(in[0], {1, 2}); }, {leaf});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool2d(in[0], {5, 3}); }, {leaf});
}
