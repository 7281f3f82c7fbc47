// unfold (im2col) and fold (col2im): their layout against PyTorch's, by hand; fold as unfold's
// adjoint (<unfold(x), c> = <x, fold(c)>); and their errors. The finite-difference checks are in
// the op tables (gradcheck_table_test.cpp, second_order_test.cpp, gradcheck_test.cpp).
#include <vector>

#include "tests/autograd/testing.h"

namespace chainrule {
namespace {

using Catch::Contains;

TEST_CASE("unfold lays windows out as PyTorch's: rows (c, i, j), columns row-major output positions", "[tensor][window]") {
  const Tensor x = reshape(arange(1, 17, 1, DType::float64), {1, 1, 4, 4});
  // [[1 2 3 4] [5 6 7 8] [9 10 11 12] [13 14 15 16]], windows 2x2 at stride 2.
  const Tensor c = unfold(x, {.kernel = {2, 2}, .stride = {2, 2}});
  REQUIRE(c.shape() == Shape{1, 4, 4});
  CHECK(c.to_vector() == std::vector<double>{1, 3, 9, 11, 2, 4, 10, 12, 5, 7, 13, 15, 6, 8, 14, 16});
  // Non-overlapping windows: fold puts every element back.
  CHECK(fold(c, {4, 4}, {.kernel = {2, 2}, .stride = {2, 2}}).to_vector() == x.to_vector());
  // Padding 1, kernel 3, stride 3 on a 2x2 image: one window, the image in its middle-to-corner.
  const Tensor p = unfold(reshape(arange(1, 5, 1, DType::float64), {1, 1, 2, 2}), {.kernel = {3, 3}, .stride = {3, 3}, .padding = {1, 1}});
  CHECK(p.shape() == Shape{1, 9, 1});
  CHECK(p.to_vector() == std::vector<double>{0, 0, 0, 0, 1, 2, 0, 3, 4});
  // Dilation 2 on one row: taps 0 and 2 of each window.
  const Tensor d = unfold(reshape(arange(0, 5, 1, DType::float64), {1, 1, 1, 5}), {.kernel = {1, 2}, .dilation = {1, 2}});
  CHECK(d.to_vector() == std::vector<double>{0, 1, 2, 2, 3, 4});
  // Two channels: channel 1's rows follow channel 0's.
  const Tensor two = unfold(reshape(arange(0, 8, 1, DType::float64), {1, 2, 2, 2}), {.kernel = {2, 2}});
  CHECK(two.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("Window2d::output_size is unfold's window count per dim", "[tensor][window]") {
  const Window2d w{.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}};
  CHECK(w.output_size(7, 6) == std::array<int64_t, 2>{4, 4});
  CHECK(unfold(zeros({1, 1, 7, 6}), w).size(2) == 16);
  CHECK_THROWS_WITH(w.output_size(7, 1), Contains("Window2d::output_size: the image [7, 1] is smaller than the window"));
  const Window2d bad{.kernel = {1, 1}, .stride = {0, 1}};
  CHECK_THROWS_WITH(bad.check("MyLayer"),
                    Contains("MyLayer: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel [1, 1], stride [0, 1]"));
}

TEST_CASE("fold adds overlapping windows, and is unfold's adjoint", "[tensor][window]") {
  const Window2d win{.kernel = {2, 2}};
  const Tensor counts = fold(unfold(ones({1, 1, 3, 3}, DType::float64), win), {3, 3}, win);
  CHECK(counts.to_vector() == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  testing::Numbers rng(7);
  for (const Window2d& w : {Window2d{.kernel = {2, 3}, .stride = {2, 1}, .padding = {1, 1}},
                            Window2d{.kernel = {3, 2}, .dilation = {2, 1}}}) {
    INFO(w.str());
    const Tensor x = from_vector(rng.uniform_vector(2 * 3 * 5 * 4, -1, 1), {2, 3, 5, 4}, DType::float64);
    const Tensor u = unfold(x, w);
    const Tensor c = from_vector(rng.uniform_vector(static_cast<std::size_t>(u.numel()), -1, 1), u.shape(), DType::float64);
    CHECK(sum(u * c).item() == Approx(sum(x * fold(c, {5, 4}, w)).item()).epsilon(1e-12));
  }
  CHECK(unfold(ones({1, 1, 3, 3}), win).dtype() == DType::float32);
}

TEST_CASE("unfold matches its formula tap by tap, for strides, padding and dilation in both dims", "[tensor][window]") {
  testing::Numbers rng(12);
  const Shape s{2, 2, 6, 7};
  const std::vector<double> x = rng.uniform_vector(static_cast<std::size_t>(s.numel()), -1, 1);
  for (const Window2d& w : {Window2d{.kernel = {3, 3}, .padding = {1, 1}}, Window2d{.kernel = {2, 3}, .stride = {2, 3}},
                            Window2d{.kernel = {3, 2}, .stride = {1, 2}, .padding = {2, 1}, .dilation = {1, 3}},
                            Window2d{.kernel = {1, 1}, .stride = {1, 1}, .padding = {0, 4}}}) {
    INFO(w.str());
    const auto [oh, ow] = w.output_size(s[2], s[3]);
    std::vector<double> expected;  // [n, (c, i, j), (y, z)]
    for (int64_t n = 0; n < s[0]; ++n)
      for (int64_t c = 0; c < s[1]; ++c)
        for (int64_t i = 0; i < w.kernel[0]; ++i)
          for (int64_t j = 0; j < w.kernel[1]; ++j)
            for (int64_t y = 0; y < oh; ++y)
              for (int64_t z = 0; z < ow; ++z) {
                const int64_t py = y * w.stride[0] - w.padding[0] + i * w.dilation[0];
                const int64_t px = z * w.stride[1] - w.padding[1] + j * w.dilation[1];
                const bool in = py >= 0 && py < s[2] && px >= 0 && px < s[3];
                expected.push_back(in ? x[static_cast<std::size_t>(((n * s[1] + c) * s[2] + py) * s[3] + px)] : 0.0);
              }
    CHECK(unfold(from_vector(x, s, DType::float64), w).to_vector() == expected);
  }
}

// max_pool2d's windows one by one, as its documentation says: padding never chosen, the first
// maximum in (i, j) order, a NaN over any number (the last NaN). Returns the maxima and, per output,
// the flat index of its place (-1 for a window wholly in the padding).
std::pair<std::vector<double>, std::vector<int64_t>> reference_max_pool(const std::vector<double>& x, const Shape& s,
                                                                        const Window2d& w) {
  const auto [oh, ow] = w.output_size(s[2], s[3]);
  std::vector<double> best;
  std::vector<int64_t> places;
  for (int64_t plane = 0; plane < s[0] * s[1]; ++plane)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t z = 0; z < ow; ++z) {
        double b = -INFINITY;
        int64_t at = -1;
        for (int64_t i = 0; i < w.kernel[0]; ++i)
          for (int64_t j = 0; j < w.kernel[1]; ++j) {
            const int64_t py = y * w.stride[0] - w.padding[0] + i * w.dilation[0];
            const int64_t px = z * w.stride[1] - w.padding[1] + j * w.dilation[1];
            if (py < 0 || py >= s[2] || px < 0 || px >= s[3]) continue;
            const int64_t p = (plane * s[2] + py) * s[3] + px;
            if (at < 0 || x[p] > b || std::isnan(x[p])) b = x[p], at = p;
          }
        best.push_back(b);
        places.push_back(at);
      }
  return {best, places};
}

TEST_CASE("max_pool2d's kernels choose as the reference: ties to the first, NaN wins, padding never", "[tensor][window]") {
  testing::Numbers rng(11);
  const Shape s{2, 3, 7, 8};
  std::vector<double> x;
  for (double v : rng.uniform_vector(static_cast<std::size_t>(s.numel()), 0, 3)) x.push_back(std::floor(v));  // ties
  for (std::size_t p : {5u, 6u, 40u, 41u, 200u}) x[p] = NAN;
  for (DType dtype : {DType::float32, DType::float64})
    for (const Window2d& w : {Window2d{.kernel = {2, 2}, .stride = {2, 2}}, Window2d{.kernel = {3, 3}},
                              Window2d{.kernel = {2, 3}, .stride = {1, 2}, .dilation = {2, 1}},
                              Window2d{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
                              Window2d{.kernel = {2, 2}, .padding = {1, 1}}}) {
      INFO(w.str() << ", " << dtype_name(dtype));
      const auto [best, places] = reference_max_pool(x, s, w);
      const Tensor leaf = from_vector(x, s, TensorOptions(dtype).requires_grad(true));
      const Tensor y = max_pool2d(leaf, w);
      const std::vector<double> got = y.to_vector();
      REQUIRE(got.size() == best.size());
      for (std::size_t k = 0; k < got.size(); ++k) {
        INFO("output " << k);
        CHECK((std::isnan(best[k]) ? std::isnan(got[k]) : got[k] == best[k]));
      }
      // Output k sends k + 1 to its place: each input's gradient names the outputs that chose it.
      y.backward(reshape(arange(1, static_cast<double>(y.numel()) + 1, 1, dtype), y.shape().to_vector()));
      std::vector<double> expected(x.size(), 0.0);
      for (std::size_t k = 0; k < places.size(); ++k)
        if (places[k] >= 0) expected[static_cast<std::size_t>(places[k])] += static_cast<double>(k + 1);
      CHECK(leaf.grad().to_vector() == expected);
    }
}

TEST_CASE("unfold and fold name the shapes and the window in their errors", "[tensor][window]") {
  CHECK_THROWS_WITH(unfold(zeros({3, 4, 4}), {.kernel = {2, 2}}),
                    Contains("unfold: expected an image batch [N, C, H, W], got [3, 4, 4]"));
  CHECK_THROWS_WITH(unfold(zeros({1, 1, 4, 4}), {.kernel = {0, 2}}),
                    Contains("unfold: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel [0, 2]"));
  CHECK_THROWS_WITH(unfold(zeros({1, 1, 4, 4}), {.kernel = {2, 2}, .padding = {-1, 0}}), Contains("padding [-1, 0]"));
  CHECK_THROWS_WITH(unfold(zeros({1, 1, 2, 4}), {.kernel = {3, 3}}),
                    Contains("unfold: the input [1, 1, 2, 4] is smaller than the window (kernel [3, 3], stride [1, 1], "
                             "padding [0, 0], dilation [1, 1]): the padded size 2 of dim 2 is below the dilated kernel's 3"));
  CHECK_THROWS_WITH(fold(zeros({1, 5, 4}), {3, 3}, {.kernel = {2, 2}}),
                    Contains("fold: expected columns [N, C * 2 * 2, L] (the kernel's size), got [1, 5, 4]"));
  CHECK_THROWS_WITH(fold(zeros({1, 4, 5}), {3, 3}, {.kernel = {2, 2}}),
                    Contains("fold: columns [1, 4, 5] hold 5 windows, but an output [3, 3] with kernel [2, 2]"));
  CHECK_THROWS_WITH(fold(zeros({1, 4, 4}), {-3, 3}, {.kernel = {2, 2}}), Contains("fold: the output size [-3, 3] is negative"));
  CHECK_THROWS_WITH(unfold(Tensor(), {.kernel = {1, 1}}), Contains("unfold: the tensor is undefined"));
  // Sizes that would overflow int64 on the way are refused, not computed.
  const int64_t huge = int64_t{1} << 62;
  CHECK_THROWS_WITH(unfold(zeros({1, 1, 4, 4}), {.kernel = {3, 3}, .dilation = {huge, 1}}),
                    Contains("unfold: the window's sizes overflow 64-bit arithmetic"));
  CHECK_THROWS_WITH(unfold(zeros({1, 1, 4, 4}), {.kernel = {1, 1}, .padding = {huge, 0}}), Contains("overflow"));
  CHECK_THROWS_WITH(fold(zeros({1, 4, 4}), {huge, huge}, {.kernel = {2, 2}, .stride = {1, 1}}), Contains("overflow"));
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}), {.kernel = {huge, 2}}), Contains("max_pool2d"));
}

}  // namespace
}  // namespace chainrule
