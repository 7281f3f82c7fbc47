// Tests for autograd/tensor_matmul.cpp: values by hand, batched and broadcast matmul against a naive
// loop, gradients against central differences (first and, through create_graph, second order), and
// the error messages.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using chainrule::testing::check_gradients;

namespace {

const TensorOptions f64 = TensorOptions(DType::float64);

// a @ b by the definition, with NumPy's 1-D promotion and batch broadcasting, as doubles.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  std::vector<int64_t> as = a.shape().to_vector(), bs = b.shape().to_vector();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
  const size_t nb = std::max(as.size(), bs.size()) - 2;
  std::vector<int64_t> ab(nb, 1), bb(nb, 1), batch(nb);  // batch dims padded on the left with 1
  std::copy(as.begin(), as.end() - 2, ab.end() - (as.size() - 2));
  std::copy(bs.begin(), bs.end() - 2, bb.end() - (bs.size() - 2));
  int64_t count = 1;
  for (size_t i = 0; i < nb; ++i) count *= batch[i] = std::max(ab[i], bb[i]);
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  std::vector<double> out;
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rest = flat, ia = 0, ib = 0, sa = 1, sb = 1;
    for (size_t d = nb; d-- > 0;) {
      const int64_t i = rest % batch[d];
      rest /= batch[d];
      ia += (ab[d] == 1 ? 0 : i) * sa;
      ib += (bb[d] == 1 ? 0 : i) * sb;
      sa *= ab[d];
      sb *= bb[d];
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < m; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < k; ++j) acc += va[(ia * n + r) * k + j] * vb[(ib * k + j) * m + c];
        out.push_back(acc);
      }
  }
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(tol));
  }
}

}  // namespace

TEST_CASE("matmul: 2-D values by hand") {
  const Tensor a = tensor({{1, 2}, {3, 4}, {5, 6}}, f64);   // [3, 2]
  const Tensor b = tensor({{7, 8, 9}, {10, 11, 12}}, f64);  // [2, 3]
  const Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{3, 3});
  CHECK(c.dtype() == DType::float64);
  CHECK(c.to_vector() == std::vector<double>{27, 30, 33, 61, 68, 75, 95, 106, 117});
  CHECK(matmul(b, a).to_vector() == std::vector<double>{76, 100, 103, 136});
}

TEST_CASE("matmul: 1-D operands are promoted as in NumPy") {
  const Tensor m = tensor({{1, 2}, {3, 4}}, f64);
  const Tensor v = tensor({5, 6}, f64);
  const Tensor vm = matmul(v, m);  // [2] @ [2, 2] -> [2]
  CHECK(vm.shape() == Shape{2});
  CHECK(vm.to_vector() == std::vector<double>{23, 34});
  const Tensor mv = matmul(m, v);  // [2, 2] @ [2] -> [2]
  CHECK(mv.shape() == Shape{2});
  CHECK(mv.to_vector() == std::vector<double>{17, 39});
  const Tensor dot = matmul(v, tensor({1, -1}, f64));  // [2] @ [2] -> []
  CHECK(dot.shape() == Shape{});
  CHECK(dot.item() == -1);
  const Tensor batch = matmul(v, tensor({{{1, 0}, {0, 1}}, {{0, 1}, {1, 0}}}, f64));  // [2] @ [2, 2, 2]
  CHECK(batch.shape() == Shape{2, 2});
  CHECK(batch.to_vector() == std::vector<double>{5, 6, 6, 5});
}

TEST_CASE("matmul: batched and broadcast against a naive loop") {
  Generator gen(3);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 2, 4}, {4, 5}},       {{2, 4}, {3, 4, 5}},          {{3, 2, 4}, {3, 4, 5}},
      {{2, 1, 2, 4}, {3, 4, 5}}, {{1, 3, 2, 4}, {2, 1, 4, 5}}, {{4}, {3, 4, 5}},
      {{3, 2, 4}, {4}},          {{2, 1, 3, 4}, {1, 5, 4, 2}}, {{1, 1, 2, 4}, {4, 3}},
  };
  for (const auto& [sa, sb] : cases) {
    for (DType d : {DType::float64, DType::float32}) {
      INFO(sa.str() << " @ " << sb.str() << " in " << dtype_name(d));
      const Tensor a = uniform(sa, -1, 1, gen, d), b = uniform(sb, -1, 1, gen, d);
      const Tensor c = matmul(a, b);
      CHECK(c.dtype() == d);
      check_close(c.to_vector(), naive_matmul(a, b), d == DType::float64 ? 1e-12 : 1e-5);
    }
  }
  CHECK(matmul(zeros({2, 1, 3, 4}, f64), zeros({5, 4, 2}, f64)).shape() == Shape{2, 5, 3, 2});
  CHECK(matmul(zeros({2, 1, 3, 4}, f64), zeros({4}, f64)).shape() == Shape{2, 1, 3});
}

TEST_CASE("matmul: float32 forward") {
  const Tensor a = tensor({{1, 2}, {3, 4}});
  const Tensor c = matmul(a, tensor({{0.5, 0}, {0, 0.25}}));
  CHECK(c.dtype() == DType::float32);
  CHECK(c.to_vector() == std::vector<double>{0.5, 0.5, 1.5, 1.0});
  CHECK(matmul(tensor({1, 2}), a).to_vector() == std::vector<double>{7, 10});
}

TEST_CASE("matmul: empty dimensions give zeros or empty results") {
  const Tensor k0 = matmul(zeros({2, 0}, f64), zeros({0, 3}, f64));
  CHECK(k0.shape() == Shape{2, 3});
  CHECK(k0.to_vector() == std::vector<double>(6, 0.0));
  CHECK(matmul(zeros({0, 3}, f64), ones({3, 2}, f64)).shape() == Shape{0, 2});
  CHECK(matmul(ones({2, 3}, f64), ones({3, 0}, f64)).shape() == Shape{2, 0});
  CHECK(matmul(zeros({0, 2, 3}), ones({3, 2})).shape() == Shape{0, 2, 2});
  CHECK(matmul(zeros({4, 2, 0}), ones({4, 0, 2})).to_vector() == std::vector<double>(16, 0.0));
  CHECK(matmul(zeros({0}, f64), zeros({0}, f64)).item() == 0);

  const Tensor a = zeros({2, 0}, TensorOptions(f64).requires_grad());
  const Tensor b = ones({0, 3}, TensorOptions(f64).requires_grad());
  sum(matmul(a, b)).backward();
  CHECK(a.grad().shape() == Shape{2, 0});
  CHECK(b.grad().shape() == Shape{0, 3});

  // Dimensions past what BLAS indexes (int) are no obstacle when nothing reaches BLAS (as LibTorch;
  // they were refused before the empty product was looked at).
  constexpr int64_t kHuge = int64_t{1} << 40;
  CHECK(matmul(zeros({0, kHuge}, f64), zeros({kHuge, 0}, f64)).shape() == Shape{0, 0});
  CHECK(matmul(zeros({int64_t{1} << 31, 0}, f64), zeros({0, 0}, f64)).shape() == Shape{int64_t{1} << 31, 0});
  const Tensor wide = zeros({0, kHuge}, TensorOptions(f64).requires_grad());
  sum(matmul(wide, zeros({kHuge, 0}, TensorOptions(f64).requires_grad()))).backward();
  CHECK(wide.grad().shape() == Shape{0, kHuge});
}

TEST_CASE("matmul: gradients match central differences") {
  const auto mm = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3}, {3, 4}},           // plain 2-D
      {{2, 2, 3}, {2, 3, 4}},     // batched
      {{2, 1, 2, 3}, {3, 3, 2}},  // broadcast batch on both sides
      {{3, 2}, {4, 2, 3}},        // a shared by every batch
      {{4, 2, 3}, {3, 2}},        // b shared (the folded single gemm)
      {{4, 2, 3}, {1, 3, 2}},     // b shared through a batch dim of 1 (db folded over the batch)
      {{2, 4, 2, 3}, {3, 2}},     // b shared by a 2-D batch
      {{3}, {3, 2}},
      {{2, 3}, {3}},
      {{3}, {3}},  // 1-D promotion
      {{3}, {2, 3, 4}},
      {{2, 2, 3}, {3}},  // 1-D promotion with a batch
      {{0, 3}, {3, 2}},
      {{2, 3}, {3, 0}},  // empty results
  };
  for (const auto& [sa, sb] : cases) {
    INFO(sa.str() << " @ " << sb.str());
    check_gradients(mm, {sa, sb}, 7);
  }
}

TEST_CASE("matmul: the plain backward (transposed gemms) equals the recorded one (Tensor ops)") {
  // A backward that is not recorded computes da and db with CBLAS's transpose flags; with
  // create_graph the same rule runs as matmul(grad, transpose(b)) and matmul(transpose(a), grad).
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5, 3}, {3, 4}}, {{2, 5, 3}, {2, 3, 4}}, {{2, 1, 5, 3}, {3, 3, 4}}, {{5, 3}, {2, 3, 4}},
      {{2, 5, 3}, {3, 4}}, {{2, 5, 3}, {1, 3, 4}}, {{3}, {3, 4}}, {{5, 3}, {3}}, {{3}, {3}},
      {{3}, {2, 3, 4}}, {{2, 5, 3}, {3}}, {{0, 3}, {3, 4}}, {{5, 0}, {0, 4}}};
  for (const DType dtype : {DType::float32, DType::float64}) {
    for (const auto& [sa, sb] : cases) {
      INFO(sa.str() << " @ " << sb.str() << ", " << dtype_name(dtype));
      Generator gen(11);
      const Tensor a = uniform(sa, -1, 1, gen, TensorOptions(dtype).requires_grad());
      const Tensor b = uniform(sb, -1, 1, gen, TensorOptions(dtype).requires_grad());
      const Tensor y = matmul(a, b);
      const Tensor w = uniform(y.shape(), -1, 1, gen, dtype);
      const auto plain = grad({sum(y * w)}, {a, b});
      const auto recorded = grad({sum(matmul(a, b) * w)}, {a, b}, {}, GradOptions{.create_graph = true});
      // Anomaly mode (and traces) run the third rule: neither fast nor recorded.
      std::vector<Tensor> unrecorded;
      {
        DetectAnomalyGuard anomaly;
        unrecorded = grad({sum(matmul(a, b) * w)}, {a, b});
      }
      for (size_t i = 0; i < 2; ++i) {
        REQUIRE(plain[i].shape() == recorded[i].shape());
        REQUIRE(unrecorded[i].shape() == recorded[i].shape());
        CHECK(plain[i].dtype() == dtype);
        CHECK_FALSE(plain[i].requires_grad());
        const std::vector<double> p = plain[i].to_vector(), r = recorded[i].to_vector(), u = unrecorded[i].to_vector();
        for (size_t j = 0; j < p.size(); ++j) {
          CHECK(std::abs(p[j] - r[j]) <= 1e-6 * (1 + std::abs(r[j])));
          CHECK(std::abs(u[j] - r[j]) <= 1e-6 * (1 + std::abs(r[j])));
        }
      }
    }
  }
}

TEST_CASE("matmul: second derivatives through a recorded backward") {
  // g = dL/da for L = sum((a @ b)^2): its own gradient runs the matmul rule on recorded tensors.
  for (const auto& [sa, sb] :
       std::vector<std::pair<Shape, Shape>>{{{2, 3}, {3, 2}}, {{3}, {2, 3, 2}}, {{2, 2, 3}, {3}}}) {
    INFO(sa.str() << " @ " << sb.str());
    check_gradients(
        [](const std::vector<Tensor>& x) {
          const Tensor y = matmul(x[0], x[1]);
          return grad({sum(y * y)}, {x[0]}, {}, GradOptions{.create_graph = true})[0];
        },
        {sa, sb}, 7);
  }
}

TEST_CASE("matmul: recording and saved inputs") {
  const Tensor w = tensor({{1, 2}, {3, 4}}, TensorOptions(f64).requires_grad());
  Tensor x = tensor({{1, 1}}, f64);
  const Tensor y = matmul(x, w);
  CHECK(y.grad_fn_name() == "matmul");
  {
    NoGradGuard no_grad;
    CHECK_FALSE(matmul(x, w).requires_grad());
  }
  // dw = x^T @ grad reads x: changing x in place before backward is an error.
  x.set({0, 0}, 5);
  CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("matmul") && Catch::Contains("modified in place"));

  // w itself is not needed for dw (x does not require grad), so changing it does not invalidate.
  Tensor w2 = tensor({{1, 2}, {3, 4}}, TensorOptions(f64).requires_grad());
  const Tensor y2 = matmul(tensor({{1, 2}}, f64), w2);
  {
    NoGradGuard no_grad;
    w2.set({0, 0}, 7);
  }
  sum(y2).backward();
  CHECK(w2.grad().to_vector() == std::vector<double>{1, 1, 2, 2});
}

TEST_CASE("matmul: errors name the op and the shapes") {
  CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})),
                    Catch::Contains("matmul: inner dimensions differ: [2, 3] @ [4, 5] (3 vs 4)"));
  CHECK_THROWS_WITH(matmul(zeros({3}), zeros({4})), Catch::Contains("matmul: inner dimensions differ: [3] @ [4]"));
  CHECK_THROWS_AS(matmul(zeros({2, 3}), zeros({4, 5})), std::invalid_argument);
  CHECK_THROWS_WITH(matmul(Tensor(2.0), zeros({3})),
                    Catch::Contains("matmul: both operands need at least 1 dimension, got [] @ [3]"));
  CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})),
                    Catch::Contains("matmul: batch dimensions cannot be broadcast: [2, 2, 3] @ [3, 3, 4]"));
  CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({3, 4}, f64)),
                    Catch::Contains("matmul") && Catch::Contains("float32") && Catch::Contains("float64"));
  CHECK_THROWS_AS(matmul(zeros({2, 3}), zeros({3, 4}, f64)), std::invalid_argument);
  CHECK_THROWS_WITH(matmul(Tensor(), zeros({3})), Catch::Contains("undefined"));
}

TEST_CASE("matmul: backward() into .grad equals the recorded rule, accumulating and with x @ x") {
  // The fast rule writes into the sweep's buffers: overwritten when the input's gradient is first
  // reached, added to (beta = 1) when another use delivered one first (sum(a * a) runs before the
  // matmul), and into one buffer for both operands of matmul(x, x); per batch matrix when a and b
  // have the same batch dims; a broadcast batch ([5, 3] @ [2, 3, 4]) through apply().
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5, 3}, {3, 4}}, {{1, 3}, {3, 4}}, {{2, 5, 3}, {3, 4}}, {{2, 5, 3}, {1, 3, 4}}, {{3}, {3, 4}},
      {{5, 3}, {3}},    {{3}, {3}},       {{4, 1}, {1, 5}},    {{0, 3}, {3, 4}},       {{5, 0}, {0, 4}},
      {{5, 3}, {3, 0}}, {{3, 3}, {3, 3}}, {{2, 5, 3}, {2, 3, 4}}, {{2, 3, 3}, {2, 3, 3}}, {{2, 1, 5, 3}, {2, 1, 3, 4}},
      {{0, 5, 3}, {0, 3, 4}}, {{2, 5, 0}, {2, 0, 4}}, {{5, 3}, {2, 3, 4}}};
  for (const DType dtype : {DType::float32, DType::float64}) {
    for (const auto& [sa, sb] : cases) {
      for (const bool other_use : {false, true}) {
        for (const bool same : {false, true}) {
          if (same && !(sa == sb)) continue;
          INFO(sa.str() << " @ " << sb.str() << ", " << dtype_name(dtype) << (other_use ? ", used elsewhere too" : "")
                        << (same ? ", x @ x" : ""));
          Generator gen(23);
          const Tensor a = uniform(sa, -1, 1, gen, TensorOptions(dtype).requires_grad());
          const Tensor b = same ? a : uniform(sb, -1, 1, gen, TensorOptions(dtype).requires_grad());
          const Tensor w = uniform(matmul(a, b).shape(), -1, 1, gen, dtype);
          auto loss = [&] {
            Tensor l = sum(matmul(a, b) * w);
            if (other_use) l = l + sum(a * a) + sum(b * b);
            return l;
          };
          const auto recorded = grad({loss()}, {a, b}, {}, GradOptions{.create_graph = true});
          loss().backward();
          loss().backward();  // accumulates into .grad
          for (const auto& [input, want] : {std::pair{a, recorded[0]}, std::pair{b, recorded[1]}}) {
            REQUIRE(input.grad().shape() == input.shape());
            const std::vector<double> got = input.grad().to_vector(), r = want.to_vector();
            REQUIRE(got.size() == r.size());
            for (size_t j = 0; j < got.size(); ++j) CHECK(std::abs(got[j] - 2 * r[j]) <= 1e-5 * (1 + std::abs(r[j])));
          }
        }
      }
    }
  }
}
