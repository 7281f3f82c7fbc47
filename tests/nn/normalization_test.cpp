// LayerNorm, GroupNorm, BatchNorm1d and Dropout: values against loops over plain doubles, running statistics,
// modes, saving, errors, and the finite-difference checks of first and second derivatives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tests/autograd/testing.h"
#include "nn/dropout.h"
#include "nn/normalization.h"
#include "nn/safetensors.h"
#include "nn/serialize.h"

using namespace chainrule;
using Catch::Contains;

namespace {

using V = const std::vector<Tensor>&;
TensorOptions f64(bool requires_grad = false) { return TensorOptions(DType::float64).requires_grad(requires_grad); }

// Deterministic inputs: an LCG's numbers in [-2, 2).
std::vector<double> numbers(std::size_t n, uint64_t seed) {
  std::vector<double> out(n);
  for (double& v : out) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<double>(seed >> 11) / 9007199254740992.0 * 4 - 2;
  }
  return out;
}

Tensor input(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  return from_vector(numbers(static_cast<std::size_t>(shape.numel()), seed), shape, f64(requires_grad));
}

// (v - mean) / sqrt(var + eps) of a group of values, var biased.
std::vector<double> normalised(const std::vector<double>& v, double eps) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  std::vector<double> out;
  for (double x : v) out.push_back((x - mean) / std::sqrt(var + eps));
  return out;
}

}  // namespace

TEST_CASE("nn: LayerNorm normalises each sample over its last dims, then scales and shifts") {
  nn::LayerNorm norm(nn::LayerNormOptions({2, 3}).dtype(DType::float64));
  CHECK(norm.weight().to_vector() == std::vector<double>(6, 1.0));
  CHECK(norm.bias().to_vector() == std::vector<double>(6, 0.0));
  Tensor(norm.weight()).mutable_data<double>()[4] = 2.5;
  Tensor(norm.bias()).mutable_data<double>()[1] = -0.75;
  const Tensor x = input({4, 2, 3}, 1);
  const Tensor y = norm.forward(x);
  REQUIRE(y.shape() == Shape{4, 2, 3});
  const std::vector<double> xs = x.to_vector(), ys = y.to_vector();
  for (std::size_t n = 0; n < 4; ++n) {
    const std::vector<double> want = normalised({xs.begin() + 6 * n, xs.begin() + 6 * n + 6}, 1e-5);
    for (std::size_t i = 0; i < 6; ++i) {
      const double w = i == 4 ? 2.5 : 1.0, b = i == 1 ? -0.75 : 0.0;
      CHECK(ys[6 * n + i] == Approx(want[i] * w + b).epsilon(1e-12));
    }
  }
  // Over the last dim only, without the affine step: the functional form.
  const Tensor z = nn::layer_norm(x, {3});
  const std::vector<double> zs = z.to_vector();
  for (std::size_t r = 0; r < 8; ++r) {
    const std::vector<double> want = normalised({xs.begin() + 3 * r, xs.begin() + 3 * r + 3}, 1e-5);
    for (std::size_t i = 0; i < 3; ++i) CHECK(zs[3 * r + i] == Approx(want[i]).epsilon(1e-12));
  }
  CHECK(norm.to_string() == "LayerNorm([2, 3], eps=1e-05, elementwise_affine=true, dtype=float64)");
  nn::LayerNorm plain(nn::LayerNormOptions({3}).elementwise_affine(false));
  CHECK(plain.parameters().empty());
  CHECK(nn::LayerNorm(nn::LayerNormOptions({3}).bias(false)).named_parameters().size() == 1);
}

TEST_CASE("nn: LayerNorm's gradients pass the finite-difference checks, first and second order") {
  const Tensor x = input({3, 4}, 2, true);
  const Tensor w = input({4}, 3, true), b = input({4}, 4, true);
  const Tensor r = input({3, 4}, 5);  // a weighted sum: the plain sum of a normalised row is constant
  const auto f = [&](V in) { return sum(nn::layer_norm(in[0], {4}, in[1], in[2]) * r); };
  testing::check_first_and_second_order(f, {x, w, b});
  // The module's parameters, by name.
  auto norm = std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({4}).dtype(DType::float64));
  const GradcheckReport model =
      gradcheck_model([&] { return sum(norm->forward(x.detach()) * r); }, norm->named_parameters());
  INFO(model);
  CHECK(model.passed);
}

TEST_CASE("nn: LayerNorm's errors name the layer and the shapes") {
  nn::LayerNorm norm(nn::LayerNormOptions({2, 3}).dtype(DType::float64));
  CHECK_THROWS_WITH(norm.forward(zeros({4, 3, 2}, DType::float64)),
                    Contains("layer_norm: the input's last dims must be normalized_shape [2, 3], got an input [4, 3, 2]"));
  CHECK_THROWS_WITH(norm.forward(zeros({3}, DType::float64)), Contains("got an input [3]"));
  CHECK_THROWS_WITH(norm.forward(zeros({2, 3})),
                    Contains("LayerNorm::forward: the input is float32 but the layer's parameters are float64"));
  CHECK_THROWS_WITH(nn::LayerNorm(nn::LayerNormOptions({})), Contains("LayerNorm: normalized_shape must have at least one dim"));
  CHECK_THROWS_WITH(nn::LayerNorm(nn::LayerNormOptions({3, 0})), Contains("LayerNorm: normalized_shape's dims must be >= 1, got [3, 0]"));
  CHECK_THROWS_WITH(nn::LayerNorm(nn::LayerNormOptions({3}).eps(0)), Contains("LayerNorm: eps must be a finite number > 0, got 0"));
  CHECK_THROWS_WITH(nn::layer_norm(zeros({2, 3}, DType::float64), {3}, ones({2}, DType::float64)),
                    Contains("layer_norm: weight has shape [2], expected normalized_shape [3]"));
  CHECK_THROWS_WITH(nn::layer_norm(zeros({2, 3}, DType::float64), {-3}), Contains("normalized_shape [-3], got an input [2, 3]"));
}

TEST_CASE("nn: GroupNorm normalises each sample's groups of channels, then scales and shifts per channel") {
  // [N, C, H, W] = [2, 6, 2, 3]: each group's C / G channels of one sample, by plain loops.
  const Shape shape{2, 6, 2, 3};
  const std::vector<double> v = numbers(static_cast<std::size_t>(shape.numel()), 21);
  const Tensor x = from_vector(v, shape, f64());
  const std::vector<double> w = numbers(6, 22), b = numbers(6, 23);
  for (int64_t groups : {1, 2, 3, 6}) {
    INFO("groups " << groups);
    nn::GroupNorm norm(nn::GroupNormOptions(groups, 6).dtype(DType::float64).eps(1e-3));
    Tensor weight = norm.weight(), bias = norm.bias();  // handles to the layer's parameters
    std::copy(w.begin(), w.end(), weight.mutable_data<double>());
    std::copy(b.begin(), b.end(), bias.mutable_data<double>());
    const std::vector<double> y = norm.forward(x).to_vector();
    const int64_t per_group = 6 / groups * 6;  // channels per group times H * W
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t g = 0; g < groups; ++g) {
        const auto first = static_cast<std::ptrdiff_t>((s * 6 * 6) + g * per_group);
        const std::vector<double> z = normalised({v.begin() + first, v.begin() + first + per_group}, 1e-3);
        for (int64_t k = 0; k < per_group; ++k) {
          const int64_t channel = g * (6 / groups) + k / 6;
          CHECK(y[static_cast<std::size_t>(first + k)] ==
                Approx(z[static_cast<std::size_t>(k)] * w[static_cast<std::size_t>(channel)] +
                       b[static_cast<std::size_t>(channel)]).epsilon(1e-12));
        }
      }
  }
  // The parameters as torch's; no affine step, no parameters; 2-D and 3-D inputs.
  nn::GroupNorm norm(nn::GroupNormOptions(2, 4));
  CHECK(norm.weight().to_vector() == std::vector<double>(4, 1.0));
  CHECK(norm.bias().to_vector() == std::vector<double>(4, 0.0));
  CHECK(norm.named_parameters().size() == 2);
  CHECK(norm.to_string() == "GroupNorm(2, 4, eps=1e-05, affine=true)");
  CHECK(nn::GroupNorm(nn::GroupNormOptions(2, 4).affine(false)).parameters().empty());
  CHECK(norm.forward(ones({3, 4})).shape() == Shape{3, 4});
  CHECK(norm.forward(ones({3, 4, 5})).shape() == Shape{3, 4, 5});
}

TEST_CASE("nn: GroupNorm's gradients pass the finite-difference checks, and its errors name the shapes") {
  const Tensor x = input({2, 4, 3}, 24, true), w = input({4}, 25, true), b = input({4}, 26, true);
  const Tensor r = input({2, 4, 3}, 27);  // weighted: the plain sum of a normalised group is constant
  testing::check_first_and_second_order([&](V in) { return sum(nn::group_norm(in[0], 2, in[1], in[2]) * r); },
                                        {x, w, b});
  nn::GroupNorm norm(nn::GroupNormOptions(2, 4).dtype(DType::float64));
  CHECK_THROWS_WITH(nn::GroupNorm(nn::GroupNormOptions(3, 4)),
                    Contains("GroupNorm: num_groups (3) must be >= 1 and divide the channels (4)"));
  CHECK_THROWS_WITH(nn::GroupNorm(nn::GroupNormOptions(2, 4).eps(-1)), Contains("GroupNorm: eps must be a finite number > 0"));
  CHECK_THROWS_WITH(norm.forward(zeros({2, 6, 3}, DType::float64)),
                    Contains("GroupNorm::forward: the input [2, 6, 3] has 6 channels, the layer 4"));
  CHECK_THROWS_WITH(norm.forward(zeros({4}, DType::float64)), Contains("group_norm: expected an input [N, C, ...], got [4]"));
  CHECK_THROWS_WITH(nn::group_norm(zeros({2, 4}, DType::float64), 2, ones({3}, DType::float64)),
                    Contains("group_norm: weight has shape [3], expected [4] (the input's channels)"));
  CHECK_THROWS_WITH(nn::group_norm(zeros({2, 4}, DType::float64), 0), Contains("group_norm: num_groups (0) must be >= 1"));
}

TEST_CASE("nn: BatchNorm1d normalises each channel over the batch and tracks running statistics") {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(3).dtype(DType::float64).momentum(0.25));
  CHECK(bn.to_string() == "BatchNorm1d(3, eps=1e-05, momentum=0.25, affine=true, dtype=float64)");
  CHECK(bn.named_buffers().size() == 3);  // running_mean, running_var, num_batches_tracked
  Tensor(bn.weight()).mutable_data<double>()[1] = 3.0;
  Tensor(bn.bias()).mutable_data<double>()[2] = 0.5;
  std::vector<double> mean(3, 0.0), var(3, 1.0);  // the running statistics, by hand
  for (uint64_t step = 0; step < 2; ++step) {
    const Tensor x = input({5, 3}, 10 + step);
    const std::vector<double> xs = x.to_vector(), ys = bn.forward(x).to_vector();
    for (std::size_t c = 0; c < 3; ++c) {
      std::vector<double> column;
      for (std::size_t n = 0; n < 5; ++n) column.push_back(xs[3 * n + c]);
      const std::vector<double> want = normalised(column, 1e-5);
      for (std::size_t n = 0; n < 5; ++n)
        CHECK(ys[3 * n + c] == Approx(want[n] * (c == 1 ? 3.0 : 1.0) + (c == 2 ? 0.5 : 0.0)).epsilon(1e-12));
      double m = 0, v = 0;
      for (double e : column) m += e;
      m /= 5;
      for (double e : column) v += (e - m) * (e - m);
      mean[c] = 0.75 * mean[c] + 0.25 * m;
      var[c] = 0.75 * var[c] + 0.25 * v / 4;  // unbiased
    }
  }
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(bn.running_mean().to_vector()[c] == Approx(mean[c]).epsilon(1e-12));
    CHECK(bn.running_var().to_vector()[c] == Approx(var[c]).epsilon(1e-12));
  }
  CHECK(bn.num_batches_tracked().shape() == Shape{});
  CHECK(bn.num_batches_tracked().item() == 2.0);
  // Evaluation: the running statistics, and nothing is updated; one sample is fine.
  bn.eval();
  const Tensor one = input({1, 3}, 20);
  const std::vector<double> y = bn.forward(one).to_vector();
  for (std::size_t c = 0; c < 3; ++c) {
    const double want = (one.to_vector()[c] - mean[c]) / std::sqrt(var[c] + 1e-5) * (c == 1 ? 3.0 : 1.0) + (c == 2 ? 0.5 : 0.0);
    CHECK(y[c] == Approx(want).epsilon(1e-12));
    CHECK(bn.running_mean().to_vector()[c] == Approx(mean[c]).epsilon(1e-12));
  }
  // The running statistics are state: state_dict holds them and load_state_dict restores them.
  const auto state = nn::state_dict(bn);
  CHECK(state.count("running_mean") == 1);
  CHECK(state.count("running_var") == 1);
  CHECK(state.count("num_batches_tracked") == 1);
  nn::BatchNorm1d fresh(nn::BatchNorm1dOptions(3).dtype(DType::float64));
  nn::load_state_dict(fresh, state);
  CHECK(fresh.running_var().to_vector() == bn.running_var().to_vector());
  CHECK(fresh.num_batches_tracked().item() == 2.0);
  CHECK(bn.num_batches_tracked().item() == 2.0);  // evaluation counted nothing
}

TEST_CASE("nn: BatchNorm with momentum std::nullopt keeps the cumulative average of the batches' statistics") {
  // torch's momentum=None: the factor is 1 / num_batches_tracked, so after k batches the running
  // statistics are the plain mean of the k batch statistics (the initial 0 and 1 weigh nothing).
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(2).dtype(DType::float64).momentum(std::nullopt));
  CHECK(bn.to_string() == "BatchNorm1d(2, eps=1e-05, momentum=None, affine=true, dtype=float64)");
  std::vector<double> mean_sum(2, 0.0), var_sum(2, 0.0);
  for (uint64_t step = 0; step < 3; ++step) {
    const Tensor x = input({4, 2}, 60 + step);
    bn.forward(x);
    const std::vector<double> xs = x.to_vector();
    for (std::size_t c = 0; c < 2; ++c) {
      double m = 0, v = 0;
      for (std::size_t n = 0; n < 4; ++n) m += xs[2 * n + c];
      m /= 4;
      for (std::size_t n = 0; n < 4; ++n) v += (xs[2 * n + c] - m) * (xs[2 * n + c] - m);
      mean_sum[c] += m;
      var_sum[c] += v / 3;  // unbiased
    }
  }
  CHECK(bn.num_batches_tracked().item() == 3.0);
  for (std::size_t c = 0; c < 2; ++c) {
    CHECK(bn.running_mean().to_vector()[c] == Approx(mean_sum[c] / 3).epsilon(1e-12));
    CHECK(bn.running_var().to_vector()[c] == Approx(var_sum[c] / 3).epsilon(1e-12));
  }
}

TEST_CASE("nn: BatchNorm's num_batches_tracked loads from torch's int64 entry, and may be absent from older files") {
  const testing::TempDir dir;
  const auto path = dir / "bn_counter.safetensors";
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(2));  // float32, as torch's default
  // A file as torch writes it: float32 statistics and parameters, the counter as int64, shape [].
  const std::vector<float> w{1.5f, 2.0f}, b{0.1f, 0.2f}, mean{0.3f, -0.4f}, var{2.0f, 3.0f};
  const std::vector<std::int64_t> count{1234};
  nn::StFile torch_file;
  torch_file.tensors = {nn::make_st_entry("weight", {2}, std::span(w)), nn::make_st_entry("bias", {2}, std::span(b)),
                        nn::make_st_entry("running_mean", {2}, std::span(mean)),
                        nn::make_st_entry("running_var", {2}, std::span(var)),
                        nn::make_st_entry("num_batches_tracked", {}, std::span(count))};
  nn::save_safetensors(path, torch_file);
  nn::load(bn, path);  // strict, no dtype conversion: an exact integer loads as it is
  CHECK(bn.num_batches_tracked().item() == 1234.0);
  CHECK(bn.running_var().to_vector() == std::vector<double>{2.0, 3.0});
  CHECK(nn::load_tensors(path).at("num_batches_tracked").dtype() == DType::float64);

  // A count float32 cannot hold exactly is refused, and nothing is loaded.
  const std::vector<std::int64_t> huge{(std::int64_t{1} << 24) + 1};
  torch_file.tensors[4] = nn::make_st_entry("num_batches_tracked", {}, std::span(huge));
  torch_file.tensors[0] = nn::make_st_entry("weight", {2}, std::span(b));
  nn::save_safetensors(path, torch_file);
  CHECK_THROWS_WITH(nn::load(bn, path), Contains("\"num_batches_tracked\": element 0 = 16777217 (I64) is beyond the "
                                                 "integers float32 holds exactly (2^24)"));
  CHECK(bn.weight().to_vector() == std::vector<double>{1.5, 2.0});
  nn::BatchNorm2d wide(nn::BatchNorm2dOptions(2).dtype(DType::float64));
  CHECK_THROWS_WITH(nn::load(wide, path), Contains("dtype F32 in the file vs F64"));  // only integers convert freely
  nn::load(wide, path, nullptr, {.allow_dtype_conversion = true});
  CHECK(wide.num_batches_tracked().item() == 16777217.0);

  // A file written before the counter existed: everything else loads, the counter stays.
  torch_file.tensors.pop_back();
  nn::save_safetensors(path, torch_file);
  nn::load(bn, path);
  CHECK(bn.weight().to_vector() == std::vector<double>{0.1f, 0.2f});
  CHECK(bn.num_batches_tracked().item() == 1234.0);
  // Only the counter may be absent.
  torch_file.tensors.pop_back();
  nn::save_safetensors(path, torch_file);
  CHECK_THROWS_WITH(nn::load(bn, path), Contains("missing \"running_var\""));
}

TEST_CASE("nn: BatchNorm1d over [N, C, L] normalises each channel over N and L") {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(2).dtype(DType::float64).affine(false));
  CHECK(bn.parameters().empty());
  const Tensor x = input({3, 2, 4}, 30);
  const std::vector<double> xs = x.to_vector(), ys = bn.forward(x).to_vector();
  for (std::size_t c = 0; c < 2; ++c) {
    std::vector<double> group;
    for (std::size_t n = 0; n < 3; ++n)
      for (std::size_t l = 0; l < 4; ++l) group.push_back(xs[8 * n + 4 * c + l]);
    const std::vector<double> want = normalised(group, 1e-5);
    for (std::size_t n = 0; n < 3; ++n)
      for (std::size_t l = 0; l < 4; ++l) CHECK(ys[8 * n + 4 * c + l] == Approx(want[4 * n + l]).epsilon(1e-12));
  }
  bn.eval();
  CHECK(bn.forward(x).shape() == Shape{3, 2, 4});
}

TEST_CASE("nn: BatchNorm1d's gradients pass the finite-difference checks in both modes") {
  for (bool training : {true, false}) {
    for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 2}}) {
      INFO("training " << training << ", input " << shape.str());
      auto bn = std::make_shared<nn::BatchNorm1d>(nn::BatchNorm1dOptions(3).dtype(DType::float64));
      {
        NoGradGuard no_grad;  // parameters and statistics away from their defaults
        Tensor(bn->weight()) += input({3}, 40);
        Tensor(bn->bias()) += input({3}, 41);
        Tensor(bn->running_mean()) += input({3}, 42);
        Tensor(bn->running_var()) += 2.5;
      }
      bn->train(training);
      const Tensor x = input(shape, 43, true), r = input(shape, 44);
      const auto f = [&](V in) { return sum(bn->forward(in[0]) * r); };
      testing::check_first_and_second_order(f, {x});
      const GradcheckReport model =
          gradcheck_model([&] { return sum(bn->forward(x.detach()) * r); }, bn->named_parameters());
      INFO(model);
      CHECK(model.passed);
    }
  }
}

TEST_CASE("nn: BatchNorm1d's errors name the layer and the shapes") {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(3));
  CHECK_THROWS_WITH(bn.forward(zeros({4, 2})),
                    Contains("BatchNorm1d::forward: expected an input of shape [N, 3] or [N, 3, L] (num_features=3), got [4, 2]"));
  CHECK_THROWS_WITH(bn.forward(zeros({3})), Contains("got [3]"));
  CHECK_THROWS_WITH(bn.forward(zeros({1, 3})),
                    Contains("BatchNorm1d::forward: training needs more than one value per channel to estimate a "
                             "variance, got input [1, 3]"));
  CHECK_THROWS_WITH(bn.forward(zeros({4, 3}, DType::float64)),
                    Contains("BatchNorm1d::forward: the input is float64 but the layer's parameters are float32"));
  CHECK(bn.running_mean().to_vector() == std::vector<double>(3, 0.0));  // a failed forward changed nothing
  CHECK_THROWS_WITH(nn::BatchNorm1d(nn::BatchNorm1dOptions(0)), Contains("BatchNorm1d: num_features must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(nn::BatchNorm1dOptions(2).momentum(1.5)),
                    Contains("BatchNorm1d: momentum must be in [0, 1] (or std::nullopt), got 1.5"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(nn::BatchNorm1dOptions(2).eps(NAN)), Contains("BatchNorm1d: eps must be a finite number > 0, got nan"));
}

TEST_CASE("nn: Dropout zeroes about p of the elements in training and scales the rest by 1 / (1 - p)") {
  nn::Dropout drop(nn::DropoutOptions(0.3).seed(5));
  CHECK(drop.to_string() == "Dropout(p=0.3)");
  const Tensor x = from_vector(std::vector<double>(10000, 2.0), {100, 100}, f64(true));
  const Tensor y = drop.forward(x);
  std::size_t dropped = 0;
  for (double v : y.to_vector()) {
    if (v == 0) ++dropped;
    else CHECK(v == Approx(2.0 / 0.7).epsilon(1e-15));
  }
  // Binomial(10000, 0.3): standard deviation 46; 5 of them either side.
  CHECK(dropped > 2770);
  CHECK(dropped < 3230);
  // The gradient is the mask: 1 / (1 - p) where kept, 0 where dropped.
  sum(y).backward();
  const std::vector<double> g = x.grad().to_vector(), ys = y.to_vector();
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == (ys[i] == 0 ? 0.0 : ys[i] / 2.0));
  // The same seed gives the same masks; the next forward draws a new one.
  nn::Dropout again(nn::DropoutOptions(0.3).seed(5));
  CHECK(again.forward(x).to_vector() == ys);
  CHECK(again.forward(x).to_vector() != ys);
}

TEST_CASE("nn: Dropout is the identity in evaluation and at p = 0, and zero at p = 1") {
  const Tensor x = input({4, 5}, 50, true);
  nn::Dropout drop(0.5);
  drop.eval();
  CHECK(drop.forward(x).impl() == x.impl());
  CHECK(nn::Dropout(0.0).forward(x).impl() == x.impl());
  const Tensor zero = nn::Dropout(1.0).forward(x);
  CHECK(zero.to_vector() == std::vector<double>(20, 0.0));
  sum(zero).backward();
  CHECK(x.grad().to_vector() == std::vector<double>(20, 0.0));
  CHECK_THROWS_WITH(nn::Dropout(1.5), Contains("Dropout: p must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(nn::Dropout(-0.1), Contains("Dropout: p must be in [0, 1], got -0.1"));
  CHECK_THROWS_WITH(nn::Dropout(NAN), Contains("Dropout: p must be in [0, 1], got nan"));
}

TEST_CASE("nn: BatchNorm2d normalises each channel of images over N, H and W") {
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(3).dtype(DType::float64).momentum(0.5));
  CHECK(bn.to_string() == "BatchNorm2d(3, eps=1e-05, momentum=0.5, affine=true, dtype=float64)");
  Tensor(bn.weight()).mutable_data<double>()[2] = 2.0;
  const Tensor x = input({2, 3, 2, 3}, 60);
  const std::vector<double> xs = x.to_vector(), ys = bn.forward(x).to_vector();
  for (std::size_t c = 0; c < 3; ++c) {
    std::vector<double> group;
    std::vector<std::size_t> at;
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t k = 0; k < 6; ++k) {
        at.push_back(n * 18 + c * 6 + k);
        group.push_back(xs[at.back()]);
      }
    const std::vector<double> want = normalised(group, 1e-5);
    for (std::size_t i = 0; i < group.size(); ++i) CHECK(ys[at[i]] == Approx(want[i] * (c == 2 ? 2.0 : 1.0)).epsilon(1e-12));
    double mean = 0, var = 0;
    for (double v : group) mean += v;
    mean /= 12;
    for (double v : group) var += (v - mean) * (v - mean);
    CHECK(bn.running_mean().to_vector()[c] == Approx(0.5 * mean).epsilon(1e-12));
    CHECK(bn.running_var().to_vector()[c] == Approx(0.5 + 0.5 * var / 11).epsilon(1e-12));
  }
  for (bool training : {true, false}) {
    INFO("training " << training);
    bn.train(training);
    const Tensor xi = input({2, 3, 2, 2}, 61, true), r = input({2, 3, 2, 2}, 62);
    testing::check_first_and_second_order([&](V in) { return sum(bn.forward(in[0]) * r); }, {xi});
  }
  CHECK_THROWS_WITH(bn.forward(zeros({2, 3, 4}, DType::float64)),
                    Contains("BatchNorm2d::forward: expected an input of shape [N, 3, H, W] (num_features=3), got [2, 3, 4]"));
  bn.train();
  CHECK_THROWS_WITH(bn.forward(zeros({1, 3, 1, 1}, DType::float64)),
                    Contains("BatchNorm2d::forward: training needs more than one value per channel"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(nn::BatchNorm2dOptions(0)), Contains("BatchNorm2d: num_features must be >= 1, got 0"));
}
