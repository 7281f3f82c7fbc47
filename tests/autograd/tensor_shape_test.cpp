// Tests for autograd/tensor_shape.cpp: permute, transpose, reshape, slice, concat, stack and the dtype
// cast; values by hand, gradients against central differences (first and, through create_graph,
// second order), and the error messages.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using chainrule::testing::check_gradients;

namespace {

const TensorOptions f64 = TensorOptions(DType::float64);
using Values = std::vector<double>;

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

}  // namespace

TEST_CASE("shape ops: permute and transpose values by hand") {
  const Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  const Tensor t = transpose(x, 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector() == Values{1, 4, 2, 5, 3, 6});
  CHECK(transpose(x, -1, -2).to_vector() == Values{1, 4, 2, 5, 3, 6});
  CHECK(transpose(x, 1, 1).to_vector() == x.to_vector());

  const Tensor c = tensor({{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}}, f64);  // [2, 3, 2]
  const Tensor p = permute(c, {2, 0, 1});  // p[i, j, k] = c[j, k, i]
  CHECK(p.shape() == Shape{2, 2, 3});
  CHECK(p.to_vector() == Values{1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12});
  CHECK(permute(c, {-1, 0, -2}).to_vector() == p.to_vector());
  const Tensor q = permute(c, {1, 0, 2});  // whole rows move: q[i, j] = c[j, i]
  CHECK(q.shape() == Shape{3, 2, 2});
  CHECK(q.to_vector() == Values{1, 2, 7, 8, 3, 4, 9, 10, 5, 6, 11, 12});
  CHECK(permute(Tensor(3.0), {}).item() == 3.0);
  CHECK(permute(zeros({0, 2}), {1, 0}).shape() == Shape{2, 0});

  const Tensor r = transpose(tensor({{1, 2}}, TensorOptions(f64).requires_grad()), 0, 1);
  CHECK(r.grad_fn_name() == "permute");  // transpose has no rule of its own
}

TEST_CASE("shape ops: reshape values by hand") {
  const Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  const Tensor r = reshape(x, {3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.to_vector() == Values{1, 2, 3, 4, 5, 6});
  CHECK(reshape(x, {-1}).shape() == Shape{6});
  CHECK(reshape(x, {1, 2, 1, 3}).shape() == Shape{1, 2, 1, 3});
  CHECK(reshape(tensor({7}, f64), {}).shape() == Shape{});
  CHECK(reshape(zeros({0, 3}), {3, 0}).shape() == Shape{3, 0});
  CHECK(reshape(zeros({0, 3}), {-1, 3}).shape() == Shape{0, 3});

  // A new tensor, not a view: changing the result leaves x alone.
  Tensor copy = reshape(x, {6});
  copy.set({0}, 100);
  CHECK(x.at({0, 0}) == 1);
}

TEST_CASE("shape ops: reshape of a temporary takes its bytes only when nothing else can see them") {
  // Alone: the bytes move (no copy), the moved-from handle is undefined.
  Tensor a = arange(0, 6, 1, f64);
  const double* bytes = a.data<double>();
  const Tensor taken = reshape(std::move(a), {2, 3});
  CHECK(taken.data<double>() == bytes);
  CHECK(!a.defined());  // NOLINT(bugprone-use-after-move): the documented state
  CHECK(taken.to_vector() == Values{0, 1, 2, 3, 4, 5});
  // Another handle, a graph that saved the bytes, or a leaf that keeps its gradient: a copy, and
  // the source keeps its values and its handle.
  Tensor b = arange(0, 6, 1, f64);
  const Tensor other = b;
  Tensor copied = reshape(std::move(b), {3, 2});
  CHECK(copied.data<double>() != other.data<double>());
  copied.set({0, 0}, 100);
  CHECK(other.at({0}) == 0);
  const Tensor w = tensor({1.0, 2.0, 3.0, 4.0}, TensorOptions(f64).requires_grad(true));
  Tensor y = w * 1.0;
  const Tensor z = y * y;  // mul keeps y's bytes for its backward
  const double* y_bytes = y.data<double>();
  const Tensor ry = reshape(std::move(y), {2, 2});
  CHECK(ry.data<double>() != y_bytes);
  Tensor leaf = w;
  CHECK(reshape(std::move(leaf), {2, 2}).data<double>() != w.data<double>());
  // Gradients flow through a taken reshape as through a copied one.
  const Tensor u = reshape(w * 3.0, {2, 2});
  sum(u * u).backward();
  CHECK(w.grad().to_vector() == Values{18, 36, 54, 72});
}

TEST_CASE("shape ops: slice values by hand") {
  const Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  const Tensor s = slice(x, 1, 1, 3);
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.to_vector() == Values{2, 3, 5, 6});
  CHECK(slice(x, -1, -2, 100).to_vector() == Values{2, 3, 5, 6});  // stop clamped to the size
  CHECK(slice(x, 1, -100, 1).to_vector() == Values{1, 4});         // start clamped to 0
  CHECK(slice(x, 0, 1, 2).to_vector() == Values{4, 5, 6});
  CHECK(slice(x, 0, 0, -1).to_vector() == Values{1, 2, 3});
  CHECK(slice(x, 0, 1, 0).shape() == Shape{0, 3});  // stop before start: empty
  CHECK(slice(x, 1, 5, 9).shape() == Shape{2, 0});
  CHECK(slice(x, 1, 0, 3).to_vector() == x.to_vector());
}

TEST_CASE("shape ops: concat and stack values by hand") {
  const Tensor a = tensor({{1, 2}}, f64), b = tensor({{3, 4}, {5, 6}}, f64);
  const Tensor rows = concat({a, b}, 0);
  CHECK(rows.shape() == Shape{3, 2});
  CHECK(rows.to_vector() == Values{1, 2, 3, 4, 5, 6});
  const Tensor cols = concat({tensor({{1}, {2}}, f64), b, zeros({2, 0}, f64)}, -1);
  CHECK(cols.shape() == Shape{2, 3});
  CHECK(cols.to_vector() == Values{1, 3, 4, 2, 5, 6});
  CHECK(concat({b}, 1).to_vector() == b.to_vector());
  // As LibTorch's cat, a 1-D empty tensor joins anything and is skipped: an accumulator started
  // as zeros({0}). Its gradient is empty, of its shape.
  Tensor start = zeros({0}, TensorOptions(f64).requires_grad());
  const Tensor bg = b.detach().set_requires_grad(true);
  const Tensor acc = concat({start, bg, zeros({0}, f64)}, 0);
  CHECK(acc.shape() == Shape{2, 2});
  CHECK(acc.to_vector() == b.to_vector());
  sum(acc * 2.0).backward();
  CHECK(start.grad().shape() == Shape{0});
  CHECK(bg.grad().to_vector() == Values{2, 2, 2, 2});
  CHECK(concat({zeros({0}, f64), zeros({0}, f64)}, 0).shape() == Shape{0});
  CHECK(concat({zeros({0}, f64), tensor({7, 8}, f64)}, 0).to_vector() == Values{7, 8});
  CHECK_THROWS_WITH(concat({zeros({0}, f64), b, zeros({3, 3}, f64)}, 0),
                    Catch::Contains("concat: tensor 2 has shape [3, 3] but tensor 1 has shape [2, 2]"));

  const Tensor u = tensor({1, 2}, f64), v = tensor({3, 4}, f64);
  const Tensor s0 = stack({u, v}, 0);
  CHECK(s0.shape() == Shape{2, 2});
  CHECK(s0.to_vector() == Values{1, 2, 3, 4});
  const Tensor s1 = stack({u, v}, 1);
  CHECK(s1.shape() == Shape{2, 2});
  CHECK(s1.to_vector() == Values{1, 3, 2, 4});
  CHECK(stack({u, v}, -1).to_vector() == s1.to_vector());
  CHECK(stack({Tensor(1.0), Tensor(2.0), Tensor(3.0)}, 0).to_vector() == Values{1, 2, 3});

  const Tensor g = stack({u, tensor({5, 6}, TensorOptions(f64).requires_grad())}, 0);
  CHECK(g.grad_fn_name() == "concat");  // stack has no rule of its own
}

TEST_CASE("shape ops: cast values, dtype and gradient dtype") {
  const Tensor x = tensor({1.5, -2.25}, TensorOptions(f64).requires_grad());
  const Tensor y = x.to(DType::float32);
  CHECK(y.dtype() == DType::float32);
  CHECK(y.to_vector() == Values{1.5, -2.25});
  CHECK(y.grad_fn_name() == "cast");
  CHECK(x.to(DType::float64).impl() == x.impl());  // already float64: the same tensor
  sum(y * tensor({2, 3})).backward();
  CHECK(x.grad().dtype() == DType::float64);
  CHECK(x.grad().to_vector() == Values{2, 3});

  const Tensor z = tensor({0.1}, TensorOptions().requires_grad());
  const Tensor up = z.to(DType::float64);
  CHECK(up.item() == static_cast<double>(0.1f));
  (up * 4.0).backward();
  CHECK(z.grad().dtype() == DType::float32);
  CHECK(z.grad().item() == 4.0);
}

TEST_CASE("shape ops: float32 forwards") {
  const Tensor x = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(transpose(x, 0, 1).dtype() == DType::float32);
  CHECK(transpose(x, 0, 1).to_vector() == Values{1, 4, 2, 5, 3, 6});
  CHECK(permute(reshape(x, {1, 2, 3}), {2, 1, 0}).to_vector() == Values{1, 4, 2, 5, 3, 6});
  CHECK(reshape(x, {3, 2}).to_vector() == Values{1, 2, 3, 4, 5, 6});
  CHECK(slice(x, 1, 2, 3).to_vector() == Values{3, 6});
  CHECK(concat({x, x}, 0).shape() == Shape{4, 3});
  CHECK(concat({x, x}, 0).dtype() == DType::float32);
  CHECK(stack({x, x}, 2).to_vector() == Values{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6});
}

TEST_CASE("shape ops: gradients match central differences") {
  const std::vector<std::tuple<const char*, Op, std::vector<Shape>>> cases = {
      {"permute",
       [](const auto& x) {
         return permute(x[0], {2, 0, 1});
       },
       {{2, 3, 4}}},
      {"permute negative",
       [](const auto& x) {
         return permute(x[0], {-1, 0, -2});
       },
       {{2, 3, 4}}},
      {"transpose", [](const auto& x) { return transpose(x[0], 0, 1); }, {{2, 3}}},
      {"transpose 3-D", [](const auto& x) { return transpose(x[0], -1, 0); }, {{2, 3, 4}}},
      {"reshape",
       [](const auto& x) {
         return reshape(x[0], {4, -1});
       },
       {{2, 3, 4}}},
      {"slice middle", [](const auto& x) { return slice(x[0], 1, 1, 3); }, {{2, 4, 2}}},
      {"slice negative", [](const auto& x) { return slice(x[0], -1, -2, 10); }, {{3, 3}}},
      {"slice prefix", [](const auto& x) { return slice(x[0], 0, 0, 1); }, {{3, 2}}},
      {"slice all", [](const auto& x) { return slice(x[0], 0, 0, 3); }, {{3, 2}}},
      {"slice empty", [](const auto& x) { return slice(x[0], 0, 2, 1); }, {{3, 2}}},
      {"concat",
       [](const auto& x) {
         return concat({x[0], x[1], x[2]}, 1);
       },
       {{2, 1}, {2, 3}, {2, 2}}},
      {"concat one", [](const auto& x) { return concat({x[0]}, 0); }, {{2, 2}}},
      {"concat reuse",
       [](const auto& x) {
         return concat({x[0], x[0] * x[0]}, 0);
       },
       {{2, 2}}},
      {"stack",
       [](const auto& x) {
         return stack({x[0], x[1]}, 1);
       },
       {{2, 3}, {2, 3}}},
      {"composite",
       [](const auto& x) {
         const Tensor t = transpose(reshape(x[0], {3, 4}), 0, 1);  // [4, 3]
         return stack({slice(t, 0, 1, 3), slice(t, 0, 2, 4) * slice(t, 0, 0, 2)}, 0);
       },
       {{2, 6}}},
  };
  for (const auto& [name, op, shapes] : cases) {
    INFO(name);
    check_gradients(op, shapes);
  }
}

TEST_CASE("shape ops: cast gradient matches central differences") {
  // Float32 rounds the perturbed values, so the step is large; the function is linear in x, so a
  // large step costs no accuracy.
  check_gradients([](const auto& x) { return x[0].to(DType::float32).to(DType::float64); }, {{2, 3}}, 11, 0.1);
}

TEST_CASE("shape ops: second derivatives through a recorded backward") {
  // The gradient of sum(s^3) for s = slice(permute(x)) runs the rules of slice (a concat), permute,
  // reshape and concat (a slice) on recorded tensors; differentiating it again checks those.
  check_gradients(
      [](const std::vector<Tensor>& x) {
        const Tensor s = slice(permute(reshape(x[0], {2, 3, 2}), {1, 2, 0}), 0, 1, 3);
        const Tensor c = concat({s, x[1]}, 1);
        return grad({sum(c * c * c)}, {x[0], x[1]}, {}, GradOptions{.create_graph = true})[0];
      },
      {{3, 4}, {2, 1, 2}});
}

TEST_CASE("shape ops: errors name the op and the values") {
  const Tensor x = zeros({2, 3, 4});
  CHECK_THROWS_WITH(permute(x, {0, 1}), Catch::Contains("permute: dims [0, 1]") && Catch::Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(permute(x, {0, 1, 1}), Catch::Contains("permute: dims [0, 1, 1] are not a permutation") &&
                                               Catch::Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(permute(x, {0, 1, -4}), Catch::Contains("permute: dim -4 in dims [0, 1, -4] is out of range"));
  CHECK_THROWS_AS(permute(x, {0, 1, 3}), std::out_of_range);
  CHECK_THROWS_AS(permute(x, {0, 0, 1}), std::invalid_argument);
  CHECK_THROWS_WITH(transpose(x, 0, 3), Catch::Contains("transpose: dim 3 is out of range"));

  CHECK_THROWS_WITH(reshape(x, {5, 5}),
                    Catch::Contains("reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5] (25 elements)"));
  CHECK_THROWS_WITH(reshape(x, {5, -1}),
                    Catch::Contains("reshape: cannot reshape [2, 3, 4] (24 elements) into [5, -1]"));
  CHECK_THROWS_WITH(reshape(x, {-1, -1}),
                    Catch::Contains("reshape: cannot reshape [2, 3, 4] into [-1, -1]: only one"));
  CHECK_THROWS_WITH(reshape(x, {-2, -12}),
                    Catch::Contains("reshape: cannot reshape [2, 3, 4] into [-2, -12]: negative"));
  CHECK_THROWS_WITH(reshape(zeros({0}), {0, -1}), Catch::Contains("reshape: cannot reshape [0] into [0, -1]"));
  CHECK_THROWS_WITH(reshape(x, std::vector<int64_t>(9, 1)), Catch::Contains("reshape: cannot reshape [2, 3, 4]"));
  CHECK_THROWS_AS(reshape(x, {5, 5}), std::invalid_argument);

  CHECK_THROWS_WITH(slice(x, 3, 0, 1), Catch::Contains("slice: dim 3 is out of range"));
  CHECK_THROWS_WITH(slice(Tensor(1.0), 0, 0, 1), Catch::Contains("slice: dim 0 is out of range"));
  CHECK_THROWS_AS(slice(x, -4, 0, 1), std::out_of_range);

  CHECK_THROWS_WITH(concat({}, 0), Catch::Contains("concat: expected at least one tensor"));
  CHECK_THROWS_WITH(concat({zeros({2, 3}), zeros({2, 3}), zeros({3, 3})}, 1),
                    Catch::Contains("concat: tensor 2 has shape [3, 3] but tensor 0 has shape [2, 3]"));
  CHECK_THROWS_WITH(concat({zeros({2, 3}), zeros({2, 3, 1})}, 0),
                    Catch::Contains("concat: tensor 1 has shape [2, 3, 1] but tensor 0 has shape [2, 3]"));
  CHECK_THROWS_WITH(
      concat({zeros({2}), zeros({2}, f64)}, 0),
      Catch::Contains("concat: tensor 1 (float64 [2]) has a different dtype than tensor 0 (float32 [2])"));
  CHECK_THROWS_WITH(concat({Tensor(1.0)}, 0), Catch::Contains("concat: tensor 0 is zero-dimensional"));
  CHECK_THROWS_WITH(concat({zeros({2}), Tensor()}, 0), Catch::Contains("concat: tensor 1 is undefined"));
  CHECK_THROWS_WITH(concat({zeros({2})}, 1), Catch::Contains("concat: dim 1 is out of range"));

  CHECK_THROWS_WITH(stack({}, 0), Catch::Contains("stack: expected at least one tensor"));
  CHECK_THROWS_WITH(stack({zeros({2}), zeros({3})}, 0),
                    Catch::Contains("stack: tensor 1 has shape [3] but tensor 0 has shape [2]"));
  CHECK_THROWS_WITH(stack({zeros({2}), zeros({2}, f64)}, 0),
                    Catch::Contains("stack: tensor 1 is float64 but tensor 0 is float32"));
  CHECK_THROWS_WITH(stack({zeros({2})}, 2),
                    Catch::Contains("stack: dim 2 is out of range for stacking tensors of shape [2]"));
  CHECK_THROWS_AS(stack({zeros({2})}, -3), std::out_of_range);

  CHECK_THROWS_WITH(Tensor().to(DType::float64), Catch::Contains("cast: the tensor is undefined"));
}
