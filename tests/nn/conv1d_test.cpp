// Conv1d, MaxPool1d, AvgPool1d, the adaptive pools AdaptiveAvgPool1d, AdaptiveMaxPool1d and
// AdaptiveMaxPool2d, and Dropout2d: values and gradients against plain loops (ties included: the
// first maximum takes the gradient), torch's windows and initialiser bounds, the finite-difference
// checks of first and second derivatives, printing and errors.
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
#include "nn/serialize.h"
#include "optim/sgd.h"
#include "optim/trainer.h"
#include "tests/autograd/testing.h"
#include "tests/nn/conv_testing.h"

using namespace chainrule;
using Catch::Contains;
using testing::at;
using testing::conv1d_by_loops;
using testing::numbers;

namespace {

using V = const std::vector<Tensor>&;

TensorOptions f64(bool requires_grad = false) { return TensorOptions(DType::float64).requires_grad(requires_grad); }

// Small whole numbers 0..3: a window of a few holds ties.
Tensor tied_numbers(const Shape& shape, uint64_t seed) {
  testing::Numbers rng(seed);
  std::vector<double> v = rng.uniform_vector(static_cast<std::size_t>(shape.numel()), 0, 4);
  for (double& e : v) e = std::floor(e);
  return from_vector(v, shape, f64());
}

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

// The windows of a pool over signals [N, C, L] with kernel k, stride s and padding p, in output order.
std::vector<Window> windows_1d(int64_t planes, int64_t l, int64_t k, int64_t s, int64_t p) {
  std::vector<Window> out;
  const int64_t ol = (l + 2 * p - k) / s + 1;
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t t = 0; t < ol; ++t) {
      Window w;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t pos = t * s - p + j;
        w.cells.push_back(pos >= 0 && pos < l ? plane * l + pos : -1);
      }
      out.push_back(w);
    }
  return out;
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

// The means of the windows (padding cells count as zeros).
void check_avg_pool(const Tensor& y, const Tensor& x, const std::vector<Window>& wins) {
  REQUIRE(y.numel() == static_cast<int64_t>(wins.size()));
  const std::vector<double> v = x.to_vector(), ys = y.to_vector();
  for (std::size_t o = 0; o < wins.size(); ++o) {
    double total = 0;
    for (int64_t cell : wins[o].cells) total += cell < 0 ? 0.0 : v[at(cell)];
    CHECK(ys[o] == Approx(total / static_cast<double>(wins[o].cells.size())).epsilon(1e-14).margin(1e-15));
  }
}

}  // namespace

TEST_CASE("nn: conv1d is the cross-correlation of the definition, with stride, padding and dilation") {
  struct Case {
    Shape x, w;
    int64_t stride, padding, dilation;
    Shape out;
  };
  for (const Case& c : {Case{{2, 3, 9}, {4, 3, 3}, 1, 0, 1, {2, 4, 7}}, Case{{1, 2, 10}, {3, 2, 4}, 3, 2, 1, {1, 3, 4}},
                        Case{{2, 1, 8}, {2, 1, 3}, 2, 1, 2, {2, 2, 3}}, Case{{1, 2, 3}, {2, 2, 5}, 1, 1, 1, {1, 2, 1}}}) {
    INFO("x " << c.x.str() << " w " << c.w.str());
    const Tensor x = numbers(c.x, 1), w = numbers(c.w, 2), b = numbers({c.w[0]}, 3);
    const Tensor y = nn::conv1d(x, w, b, c.stride, c.padding, c.dilation);
    REQUIRE(y.shape() == c.out);
    const std::vector<double> want = conv1d_by_loops(x, w, b, c.stride, c.padding, c.dilation, c.out[2]);
    const std::vector<double> got = y.to_vector();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
    const std::vector<double> no_bias = conv1d_by_loops(x, w, Tensor(), c.stride, c.padding, c.dilation, c.out[2]);
    const std::vector<double> got_no_bias = nn::conv1d(x, w, Tensor(), c.stride, c.padding, c.dilation).to_vector();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got_no_bias[i] == Approx(no_bias[i]).epsilon(1e-12).margin(1e-14));
  }
}

TEST_CASE("nn: conv1d's gradients pass the finite-difference checks, first and second order") {
  const Tensor x = numbers({2, 2, 7}, 4, true), w = numbers({3, 2, 3}, 5, true), b = numbers({3}, 6, true);
  testing::check_first_and_second_order([](V in) { return nn::conv1d(in[0], in[1], in[2], 2, 1, 2); }, {x, w, b});
  testing::check_first_and_second_order([](V in) { return nn::conv1d(in[0], in[1]); }, {x, w});
}

TEST_CASE("nn: Conv1d registers torch's 3-d weight and initialises it with fan_in = C * k") {
  nn::Conv1d conv(nn::Conv1dOptions(3, 8, 5).padding(2).seed(4));
  const std::vector<nn::NamedTensor> params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{8, 3, 5});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second.shape() == Shape{8});
  const double bound = 1 / std::sqrt(3.0 * 5);
  for (const Tensor& t : {conv.weight(), conv.bias()}) {
    const std::vector<double> v = t.to_vector();
    CHECK(*std::max_element(v.begin(), v.end()) <= bound);
    CHECK(*std::min_element(v.begin(), v.end()) >= -bound);
    CHECK(*std::max_element(v.begin(), v.end()) > bound / 2);  // spread out, not all near 0
  }
  // The same draws as a Conv2d with the kernel [1, 5] (same fans, same order: weight, then bias).
  nn::Conv2d conv2(nn::Conv2dOptions(3, 8, {1, 5}).seed(4));
  CHECK(conv.weight().to_vector() == conv2.weight().to_vector());
  CHECK(conv.bias().to_vector() == conv2.bias().to_vector());
  // The layer is conv1d with its parameters.
  const Tensor x = numbers({2, 3, 6}, 7).to(DType::float32);
  const Tensor y = conv.forward(x);
  REQUIRE(y.shape() == Shape{2, 8, 6});
  CHECK(y.to_vector() == nn::conv1d(x, conv.weight(), conv.bias(), 1, 2).to_vector());
  nn::Conv1d plain(nn::Conv1dOptions(3, 8, 5).bias(false).stride(2).dilation(2).dtype(DType::float64));
  CHECK(plain.named_parameters().size() == 1);
  CHECK(!plain.bias().defined());
  CHECK(plain.forward(numbers({1, 3, 12}, 8)).shape() == Shape{1, 8, 2});
}

TEST_CASE("nn: Conv1d loads a file of torch's layout (weight [O, C, k]) and refuses a 4-d weight") {
  // What safetensors.torch.save_file(conv.state_dict()) writes for torch.nn.Conv1d(2, 3, 4).
  testing::TempDir dir;
  const Tensor w = numbers({3, 2, 4}, 17).to(DType::float32), b = numbers({3}, 18).to(DType::float32);
  nn::save_tensors({{"weight", w}, {"bias", b}}, dir.path() / "torch.safetensors");
  nn::Conv1d conv(nn::Conv1dOptions(2, 3, 4));
  nn::load(conv, dir.path() / "torch.safetensors");
  CHECK(conv.weight().to_vector() == w.to_vector());
  CHECK(conv.bias().to_vector() == b.to_vector());
  const Tensor x = numbers({2, 2, 9}, 19).to(DType::float32);
  CHECK(conv.forward(x).to_vector() == nn::conv1d(x, w, b).to_vector());
  // A Conv2d's [O, C, 1, k] is not a Conv1d's weight: refused with both shapes.
  nn::save_tensors({{"weight", reshape(w, {3, 2, 1, 4})}, {"bias", b}}, dir.path() / "as_2d.safetensors");
  CHECK_THROWS_WITH(nn::load(conv, dir.path() / "as_2d.safetensors"),
                    Contains("\"weight\": shape [3, 2, 1, 4] in the file vs [3, 2, 4] in the model"));
}

TEST_CASE("nn: the 1-d layers print as torch's, sizes as lists") {
  CHECK(nn::Conv1d(nn::Conv1dOptions(1, 8, 3)).to_string() == "Conv1d(1, 8, kernel_size=[3], stride=[1])");
  CHECK(nn::Conv1d(nn::Conv1dOptions(2, 4, 5).stride(2).padding(1).dilation(3).bias(false).dtype(DType::float64))
            .to_string() == "Conv1d(2, 4, kernel_size=[5], stride=[2], padding=[1], dilation=[3], bias=false, dtype=float64)");
  CHECK(nn::MaxPool1d(2).to_string() == "MaxPool1d(kernel_size=[2], stride=[2], padding=[0])");
  CHECK(nn::AvgPool1d(3, 1, 1).to_string() == "AvgPool1d(kernel_size=[3], stride=[1], padding=[1])");
  CHECK(nn::AdaptiveAvgPool1d(4).to_string() == "AdaptiveAvgPool1d(output_size=[4])");
  CHECK(nn::AdaptiveMaxPool1d(1).to_string() == "AdaptiveMaxPool1d(output_size=[1])");
}

TEST_CASE("nn: max_pool1d and avg_pool1d pool each window, the gradient of max to its first maximum") {
  const Tensor x = tied_numbers({2, 3, 9}, 11);
  struct Case {
    int64_t kernel;
    std::optional<int64_t> stride;
    int64_t padding, out;
  };
  for (const Case& c : {Case{3, {}, 1, 3}, Case{2, 1, 0, 8}, Case{4, 2, 2, 5}, Case{9, {}, 0, 1}}) {
    INFO("kernel " << c.kernel << " padding " << c.padding);
    const int64_t stride = c.stride.value_or(c.kernel);
    const std::vector<Window> wins = windows_1d(6, 9, c.kernel, stride, c.padding);
    const Tensor y = nn::max_pool1d(x, c.kernel, c.stride, c.padding);
    CHECK(y.shape() == Shape{2, 3, c.out});
    check_max_pool([&](const Tensor& t) { return nn::max_pool1d(t, c.kernel, c.stride, c.padding); }, x, wins);
    const Tensor avg = nn::AvgPool1d(c.kernel, c.stride, c.padding).forward(x);
    CHECK(avg.shape() == Shape{2, 3, c.out});
    check_avg_pool(avg, x, wins);
  }
  // Ties by hand: the first of the window takes it all; the padding (-inf) is never chosen.
  const Tensor tied = tensor({{{2.0, 2.0, -1.0, -1.0}}}, f64(true));
  const Tensor y = nn::MaxPool1d(3, 1, 1).forward(tied);  // [pad, 2, 2], [2, 2, -1], [2, -1, -1], [-1, -1, pad]
  CHECK(y.to_vector() == std::vector<double>{2, 2, 2, -1});
  sum(y).backward();
  CHECK(tied.grad().to_vector() == std::vector<double>{2, 1, 1, 0});
}

TEST_CASE("nn: the 1-d pools' gradients pass the finite-difference checks, first and second order") {
  const Tensor x = numbers({2, 2, 9}, 12, true);  // continuous values: no ties in a window
  testing::check_first_and_second_order([](V in) { return nn::max_pool1d(in[0], 3, 2, 1); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::avg_pool1d(in[0], 4, 1, 2); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_avg_pool1d(in[0], 4); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool1d(in[0], 4); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool1d(in[0], 1); }, {x});
}

TEST_CASE("nn: adaptive_avg_pool1d and adaptive_max_pool1d pool torch's windows along L") {
  // 7 into 3: positions 0-2, 2-4, 4-6 (overlapping); 7 into 4: 0-1, 1-3, 3-5, 5-6.
  const Tensor x = tied_numbers({2, 3, 7}, 13);
  for (const int64_t out : {3, 4, 7, 1, 2, 5, 6}) {
    INFO("output " << out);
    const std::vector<Window> wins = adaptive_windows(6, 1, 7, 1, out);
    const Tensor avg = nn::AdaptiveAvgPool1d(out).forward(x);
    CHECK(avg.shape() == Shape{2, 3, out});
    check_avg_pool(avg, x, wins);
    CHECK(nn::AdaptiveMaxPool1d(out).forward(x).shape() == Shape{2, 3, out});
    check_max_pool([out](const Tensor& t) { return nn::adaptive_max_pool1d(t, out); }, x, wins);
  }
  // A larger output than input repeats values, as torch's: 3 into 5 is 0, 0-1, 1, 1-2, 2.
  const Tensor short_x = tensor({{{1.0, 3.0, 2.0}}}, f64());
  CHECK(nn::adaptive_max_pool1d(short_x, 5).to_vector() == std::vector<double>{1, 3, 3, 3, 2});
  CHECK(nn::adaptive_avg_pool1d(short_x, 5).to_vector() == std::vector<double>{1, 2, 3, 2.5, 2});
}

TEST_CASE("nn: the 1-d layers' errors name the op, the shapes and the sizes") {
  const Tensor x = zeros({2, 3, 8});
  CHECK_THROWS_WITH(nn::conv1d(Tensor(), zeros({4, 3, 3})), Contains("conv1d: the input is undefined"));
  CHECK_THROWS_WITH(nn::conv1d(zeros({3, 8}), zeros({4, 3, 3})),
                    Contains("conv1d: expected a batch of signals [N, C, L], got [3, 8]"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 2, 3})),
                    Contains("conv1d: the input [2, 3, 8] has 3 channels but the weight [4, 2, 3] expects 2"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 3, 3, 3})), Contains("conv1d: expected a weight [O, C / groups, k], got [4, 3, 3, 3]"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 3, 3}), zeros({3})),
                    Contains("conv1d: bias has shape [3], expected [4] (the weight's out channels)"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 3, 3}, DType::float64)),
                    Contains("conv1d: the input is float32 but the weight is float64"));
  CHECK_THROWS_WITH(nn::conv1d(zeros({2, 3, 4}), zeros({4, 3, 5})),
                    Contains("conv1d: the input [2, 3, 4] is shorter than the window (kernel 5, stride 1, padding 0, "
                             "dilation 1): its padded length 4 is below the dilated kernel's 5"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 3, 3}), Tensor(), 1, 0, 4),
                    Contains("conv1d: the input [2, 3, 8] is shorter than the window (kernel 3, stride 1, padding 0, "
                             "dilation 4): its padded length 8 is below the dilated kernel's 9"));
  CHECK_THROWS_WITH(nn::conv1d(x, zeros({4, 3, 3}), Tensor(), 0),
                    Contains("conv1d: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel 3, stride 0, "
                             "padding 0, dilation 1"));
  nn::Conv1d conv(nn::Conv1dOptions(3, 4, 3));
  CHECK_THROWS_WITH(conv.forward(zeros({2, 1, 8})),
                    Contains("Conv1d::forward: expected an input [N, 3, L] (in_channels=3), got [2, 1, 8]"));
  CHECK_THROWS_WITH(conv.forward(zeros({2, 3, 8, 8})),
                    Contains("Conv1d::forward: expected a batch of signals [N, C, L], got [2, 3, 8, 8]"));
  CHECK_THROWS_WITH(conv.forward(zeros({2, 3, 8}, DType::float64)),
                    Contains("Conv1d::forward: the input is float64 but the layer's parameters are float32"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(3, 0, 3)),
                    Contains("Conv1d: in_channels, out_channels and the kernel size must be >= 1, got 3, 0 and 3"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(1, 4, 3).padding(-1)),
                    Contains("Conv1d: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel 3, stride 1, "
                             "padding -1, dilation 1"));
  CHECK_THROWS_WITH(nn::MaxPool1d(2, 2, 2), Contains("MaxPool1d: padding 2 must be at most half the kernel 2"));
  CHECK_THROWS_WITH(nn::AvgPool1d(0), Contains("AvgPool1d: kernel, stride and dilation must be >= 1 and padding >= 0, got "
                                               "kernel 0, stride 0, padding 0, dilation 1"));
  CHECK_THROWS_WITH(nn::avg_pool1d(x, 3, 1, 2), Contains("avg_pool1d: padding 2 must be at most half the kernel 3"));
  CHECK_THROWS_WITH(nn::max_pool1d(zeros({1, 1, 1}), 2),
                    Contains("max_pool1d: the input [1, 1, 1] is shorter than the window (kernel 2, stride 2, padding 0, "
                             "dilation 1)"));
  CHECK_THROWS_WITH(nn::MaxPool1d(2).forward(zeros({1, 1, 1, 4})),
                    Contains("max_pool1d: expected a batch of signals [N, C, L], got [1, 1, 1, 4]"));
  CHECK_THROWS_WITH(nn::AdaptiveMaxPool1d(0), Contains("AdaptiveMaxPool1d: the output size must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::adaptive_avg_pool1d(x, -2), Contains("adaptive_avg_pool1d: the output size must be >= 1, got -2"));
  CHECK_THROWS_WITH(nn::adaptive_max_pool1d(zeros({1, 2, 0}), 2),
                    Contains("adaptive_max_pool1d: the input [1, 2, 0] is empty along L (L must be >= 1)"));
  CHECK_THROWS_WITH(nn::adaptive_avg_pool1d(zeros({2, 8}), 2),
                    Contains("adaptive_avg_pool1d: expected a batch of signals [N, C, L], got [2, 8]"));
}

TEST_CASE("nn: a small 1-d CNN learns to tell a rising edge from a falling one") {
  // Signals of 12 with one step up (label 0) or down (label 1) at a random place, plus noise: a
  // kernel of 2 finds the edge, AdaptiveMaxPool1d(1) takes it wherever it is.
  Generator gen(21);
  const int64_t n = 32, l = 12;
  std::vector<double> samples(static_cast<std::size_t>(n * l));
  std::vector<int64_t> labels(static_cast<std::size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    labels[at(k)] = k % 2;
    const auto edge = static_cast<int64_t>(gen.uniform(2, 10));
    for (int64_t t = 0; t < l; ++t)
      samples[at(k * l + t)] = ((t < edge) == (k % 2 == 1) ? 1.0 : 0.0) + gen.uniform(-0.1, 0.1);
  }
  const Tensor x = from_vector(samples, {n, 1, l}, DType::float64);
  nn::manual_seed(3);
  auto net = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv1d>(nn::Conv1dOptions(1, 8, 2).dtype(DType::float64)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::AdaptiveMaxPool1d>(1), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Dense>(nn::DenseOptions(8, 2).dtype(DType::float64)));
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  const optim::FitResult fitted = optim::fit(opt, [&] { return nn::cross_entropy(net->forward(x), labels); },
                                             optim::FitOptions().max_epochs(60).quiet());
  REQUIRE(fitted.losses.size() == 60);
  CHECK(fitted.losses.back() < fitted.losses.front() / 10);
  CHECK(nn::accuracy(nn::argmax_labels(net->forward(x)), labels) == 1.0);
}

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

TEST_CASE("nn: Dropout2d zeroes whole channels and scales the others by 1 / (1 - p)") {
  nn::Dropout2d drop(nn::DropoutOptions(0.3).seed(5));
  const Tensor x = full({20, 50, 3, 4}, 2.0, f64(true));
  const Tensor y = drop.forward(x);
  REQUIRE(y.shape() == x.shape());
  const std::vector<double> ys = y.to_vector();
  std::size_t dropped = 0;
  std::vector<std::size_t> dropped_per_channel(50, 0);
  for (std::size_t channel = 0; channel < 1000; ++channel) {
    const double first = ys[channel * 12];
    CHECK((first == 0 || first == Approx(2.0 / 0.7).epsilon(1e-15)));
    for (std::size_t k = 1; k < 12; ++k) CHECK(ys[channel * 12 + k] == first);  // the whole channel alike
    if (first == 0) ++dropped, ++dropped_per_channel[channel % 50];
  }
  // Binomial(1000, 0.3): standard deviation 14.5; 5 of them either side.
  CHECK(dropped > 227);
  CHECK(dropped < 373);
  // One draw per (sample, channel): a channel is dropped in some samples and kept in others.
  CHECK(std::count_if(dropped_per_channel.begin(), dropped_per_channel.end(), [](std::size_t d) { return d > 0 && d < 20; }) > 40);
  // The gradient is the mask.
  sum(y).backward();
  const std::vector<double> g = x.grad().to_vector();
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == ys[i] / 2.0);
  // The same seed gives the same masks; the next forward draws a new one.
  nn::Dropout2d again(nn::DropoutOptions(0.3).seed(5));
  CHECK(again.forward(x).to_vector() == ys);
  CHECK(again.forward(x).to_vector() != ys);
  CHECK(nn::Dropout2d(nn::DropoutOptions(0.3).seed(6)).forward(x).to_vector() != ys);
}

TEST_CASE("nn: Dropout2d reads a 3-d input as [N, C, L], as torch's") {
  nn::Dropout2d drop(nn::DropoutOptions(0.5).seed(8));
  const Tensor x = ones({30, 4, 6}, f64());
  const std::vector<double> ys = drop.forward(x).to_vector();
  std::size_t dropped = 0;
  for (std::size_t row = 0; row < 120; ++row) {
    for (std::size_t k = 1; k < 6; ++k) CHECK(ys[row * 6 + k] == ys[row * 6]);
    CHECK((ys[row * 6] == 0 || ys[row * 6] == 2));
    dropped += ys[row * 6] == 0;
  }
  CHECK(dropped > 30);  // Binomial(120, 0.5): 60, standard deviation 5.5
  CHECK(dropped < 90);
}

TEST_CASE("nn: Dropout2d is the identity in evaluation and at p = 0, and zero at p = 1") {
  const Tensor x = numbers({2, 3, 4, 4}, 16, true);
  nn::Dropout2d drop(0.5);
  drop.eval();
  CHECK(drop.forward(x).impl() == x.impl());
  CHECK(nn::Dropout2d(0.0).forward(x).impl() == x.impl());
  const Tensor zero = nn::Dropout2d(1.0).forward(x);
  CHECK(zero.to_vector() == std::vector<double>(96, 0.0));
  sum(zero).backward();
  CHECK(x.grad().to_vector() == std::vector<double>(96, 0.0));
  CHECK(nn::Dropout2d().to_string() == "Dropout2d(p=0.5)");
  CHECK(nn::Dropout2d(0.25).to_string() == "Dropout2d(p=0.25)");
  CHECK_THROWS_WITH(nn::Dropout2d(1.5), Contains("Dropout2d: p must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(nn::Dropout2d(-0.1), Contains("Dropout2d: p must be in [0, 1], got -0.1"));
  CHECK_THROWS_WITH(nn::Dropout2d().forward(zeros({2, 3})),
                    Contains("Dropout2d::forward: expected [N, C, H, W] or [N, C, L], got [2, 3]"));
  CHECK_THROWS_WITH(nn::Dropout2d().forward(zeros({1, 2, 3, 4, 5})),
                    Contains("Dropout2d::forward: expected [N, C, H, W] or [N, C, L], got [1, 2, 3, 4, 5]"));
  CHECK_THROWS_WITH(nn::Dropout2d().forward(Tensor()), Contains("Dropout2d::forward: the input is undefined"));
}

TEST_CASE("nn: Dropout1d zeroes whole channels of signals, batched or not, as torch's") {
  nn::Dropout1d drop(nn::DropoutOptions(0.5).seed(9));
  for (const Shape& shape : {Shape{30, 4, 6}, Shape{120, 6}}) {
    CAPTURE(shape.str());
    const Tensor x = ones(shape, f64(true));
    const Tensor y = drop.forward(x);
    const std::vector<double> ys = y.to_vector();
    std::size_t dropped = 0;
    for (std::size_t row = 0; row < 120; ++row) {
      for (std::size_t k = 1; k < 6; ++k) CHECK(ys[row * 6 + k] == ys[row * 6]);  // one draw per channel
      CHECK((ys[row * 6] == 0 || ys[row * 6] == 2));
      dropped += ys[row * 6] == 0;
    }
    CHECK(dropped > 30);  // Binomial(120, 0.5): 60, standard deviation 5.5
    CHECK(dropped < 90);
    sum(y).backward();
    CHECK(x.grad().to_vector() == ys);  // the gradient is the mask
  }
  drop.eval();
  const Tensor x = ones({2, 3, 4}, f64());
  CHECK(drop.forward(x).impl() == x.impl());
  CHECK(nn::Dropout1d(0.25).to_string() == "Dropout1d(p=0.25)");
  CHECK_THROWS_WITH(nn::Dropout1d().forward(zeros({2, 3, 4, 5})),
                    Contains("Dropout1d::forward: expected [N, C, L] or [C, L], got [2, 3, 4, 5]"));
  CHECK_THROWS_WITH(nn::Dropout1d(2.0), Contains("Dropout1d: p must be in [0, 1], got 2"));
}
