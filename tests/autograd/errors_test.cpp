// Caller mistakes: each throws the documented exception type (std::invalid_argument for shapes and
// dtypes, std::out_of_range for indices and dims, std::logic_error for graph misuse) with a message
// that names the op and the shapes or values involved. The texts themselves are asserted.
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

Tensor f64(const Shape& s, bool requires_grad = false) {
  return full(s, 0.5, TensorOptions(DType::float64).requires_grad(requires_grad));
}

}  // namespace

TEST_CASE("errors: impossible broadcasts and shape mismatches", "[autograd][errors]") {
  const std::string add = message_of<std::invalid_argument>([] { f64({2, 3}) + f64({4}); });
  CHECK_THAT(add, Contains("add") && Contains("[2, 3]") && Contains("[4]") && Contains("broadcast"));

  const std::string mul = message_of<std::invalid_argument>([] { f64({2, 3}, true) * f64({3, 2}); });
  CHECK_THAT(mul, Contains("mul") && Contains("[2, 3]") && Contains("[3, 2]"));

  const std::string pw = message_of<std::invalid_argument>([] { pow(f64({5}), f64({2})); });
  CHECK_THAT(pw, Contains("pow") && Contains("[5]") && Contains("[2]"));

  // In place: the result must keep the tensor's shape.
  const std::string inplace = message_of<std::invalid_argument>([] {
    Tensor t = f64({3});
    t += f64({2, 3});
  });
  CHECK_THAT(inplace, Contains("operator+=") && Contains("[2, 3]") && Contains("[3]"));

  const std::string ex = message_of<std::invalid_argument>([] { expand(f64({3, 2}), {3, 4}); });
  CHECK_THAT(ex, Contains("expand") && Contains("[3, 2]") && Contains("[3, 4]"));

  const std::string rs = message_of<std::invalid_argument>([] { reshape(f64({2, 3}), {4}); });
  CHECK_THAT(rs, Contains("reshape") && Contains("[2, 3]") && Contains("[4]"));

  const std::string cc = message_of<std::invalid_argument>([] { concat({f64({2, 3}), f64({3, 2})}, 0); });
  CHECK_THAT(cc, Contains("concat") && Contains("[2, 3]") && Contains("[3, 2]"));

  const std::string st = message_of<std::invalid_argument>([] { stack({f64({2}), f64({3})}, 0); });
  CHECK_THAT(st, Contains("stack") && Contains("[2]") && Contains("[3]"));

  const std::string fv = message_of<std::invalid_argument>([] { from_vector({1, 2, 3}, {2, 2}); });
  CHECK_THAT(fv, Contains("from_vector") && Contains("3") && Contains("[2, 2]"));

  const std::string ragged = message_of<std::invalid_argument>([] { tensor({{1, 2}, {3}}); });
  CHECK_THAT(ragged, Contains("tensor") && Contains("ragged"));

  const std::string item = message_of<std::invalid_argument>([] { f64({2, 3}).item(); });
  CHECK_THAT(item, Contains("item") && Contains("[2, 3]") && Contains("6"));
}

TEST_CASE("errors: mixing float32 and float64", "[autograd][errors]") {
  const Tensor a = ones({2}, DType::float32), b = ones({2}, DType::float64);
  const std::string add = message_of<std::invalid_argument>([&] { a + b; });
  CHECK_THAT(add, Contains("add") && Contains("float32") && Contains("float64") && Contains("to("));

  const std::string div = message_of<std::invalid_argument>([&] { b / a; });
  CHECK_THAT(div, Contains("div") && Contains("float64") && Contains("float32"));

  const std::string mm = message_of<std::invalid_argument>([] {
    matmul(ones({2, 3}, DType::float32), ones({3, 2}, DType::float64));
  });
  CHECK_THAT(mm, Contains("matmul") && Contains("float32") && Contains("float64") && Contains("[2, 3]"));

  const std::string cat = message_of<std::invalid_argument>([&] { concat({a, b}, 0); });
  CHECK_THAT(cat, Contains("concat") && Contains("float32") && Contains("float64"));

  const std::string inplace = message_of<std::invalid_argument>([&] {
    Tensor t = ones({2}, DType::float32);
    t += b;
  });
  CHECK_THAT(inplace, Contains("operator+=") && Contains("float32") && Contains("float64"));

  const std::string data = message_of<std::invalid_argument>([&] { b.data<float>(); });
  CHECK_THAT(data, Contains("data") && Contains("float64") && Contains("float32"));

  // A plain number adopts the tensor's dtype: not an error.
  CHECK((a + 1.5).dtype() == DType::float32);
  CHECK((2.0 * a).dtype() == DType::float32);
}

TEST_CASE("errors: matmul's inner and batch dimensions", "[autograd][errors]") {
  const std::string inner = message_of<std::invalid_argument>([] { matmul(f64({2, 3}), f64({4, 5})); });
  CHECK_THAT(inner, Contains("matmul") && Contains("[2, 3]") && Contains("[4, 5]") && Contains("3 vs 4"));

  const std::string vec = message_of<std::invalid_argument>([] { matmul(f64({3}), f64({2, 5})); });
  CHECK_THAT(vec, Contains("matmul") && Contains("[3]") && Contains("[2, 5]"));

  const std::string batch = message_of<std::invalid_argument>([] { matmul(f64({2, 2, 3}), f64({3, 3, 4})); });
  CHECK_THAT(batch, Contains("matmul") && Contains("[2, 2, 3]") && Contains("[3, 3, 4]") && Contains("batch"));

  const std::string zero_d = message_of<std::invalid_argument>([] { matmul(f64({}), f64({2})); });
  CHECK_THAT(zero_d, Contains("matmul") && Contains("[]"));

  // An empty inner dimension between two huge outer ones: 2^80 zeros, named by matmul (it was
  // "Shape: [...] is too large", naming no op).
  const int64_t huge = int64_t{1} << 40;
  const std::string too_large =
      message_of<std::invalid_argument>([&] { matmul(zeros({huge, 0}, DType::float64), zeros({0, huge}, DType::float64)); });
  CHECK_THAT(too_large, Catch::StartsWith("matmul: [1099511627776, 0] @ [0, 1099511627776] gives a result too large"));
}

TEST_CASE("errors: out-of-range indices and dims", "[autograd][errors]") {
  const Tensor t = f64({2, 3});
  const std::string at = message_of<std::out_of_range>([&] { t.at({2, 0}); });
  CHECK_THAT(at, Contains("Tensor::at") && Contains("index 2") && Contains("[2, 3]"));

  const std::string neg = message_of<std::out_of_range>([&] { t.at({0, -1}); });
  CHECK_THAT(neg, Contains("Tensor::at") && Contains("-1") && Contains("[2, 3]"));

  const std::string count = message_of<std::out_of_range>([&] { t.at({1}); });
  CHECK_THAT(count, Contains("Tensor::at") && Contains("1 indices") && Contains("[2, 3]"));

  const std::string set = message_of<std::out_of_range>([] {
    Tensor u = f64({2, 3});
    u.set({0, 3}, 1.0);
  });
  CHECK_THAT(set, Contains("Tensor::set") && Contains("index 3") && Contains("[2, 3]"));

  const std::string sum_dim = message_of<std::out_of_range>([&] { sum(t, {2}); });
  CHECK_THAT(sum_dim, Contains("sum") && Contains("dim 2") && Contains("2 dimensions"));

  const std::string max_dim = message_of<std::out_of_range>([&] { max(t, {-3}); });
  CHECK_THAT(max_dim, Contains("max") && Contains("dim -3"));

  const std::string mean_dim = message_of<std::out_of_range>([&] { mean(t, {5}, true); });
  CHECK_THAT(mean_dim, Contains("mean") && Contains("dim 5"));

  const std::string slice_dim = message_of<std::out_of_range>([&] { slice(t, 2, 0, 1); });
  CHECK_THAT(slice_dim, Contains("slice") && Contains("dim 2"));

  const std::string perm = message_of<std::out_of_range>([&] { permute(t, {0, 2}); });
  CHECK_THAT(perm, Contains("permute") && Contains("2") && Contains("[2, 3]"));

  const std::string tr = message_of<std::out_of_range>([&] { transpose(t, 0, 4); });
  CHECK_THAT(tr, Contains("transpose") && Contains("dim 4"));

  const std::string cat = message_of<std::out_of_range>([&] { concat({t, t}, 2); });
  CHECK_THAT(cat, Contains("concat") && Contains("dim 2"));

  const std::string stk = message_of<std::out_of_range>([&] { stack({t, t}, 4); });
  CHECK_THAT(stk, Contains("stack") && Contains("dim 4") && Contains("[2, 3]"));

  const std::string size = message_of<std::out_of_range>([&] { t.size(2); });
  CHECK_THAT(size, Contains("size") && Contains("dim 2"));

  // A repeated dim is a value error, not a range error.
  const std::string twice = message_of<std::invalid_argument>([&] { sum(t, {1, -1}); });
  CHECK_THAT(twice, Contains("sum") && Contains("more than once"));
}

TEST_CASE("errors: backward on a non-scalar output needs a seed", "[autograd][errors]") {
  Tensor x = f64({2, 3}, true);
  const Tensor y = x * 2.0;
  const std::string no_seed = message_of<std::invalid_argument>([&] { y.backward(); });
  CHECK_THAT(no_seed, Contains("backward") && Contains("[2, 3]") && Contains("seed"));

  const std::string bad_seed = message_of<std::invalid_argument>([&] { y.backward(ones({3}, DType::float64)); });
  CHECK_THAT(bad_seed, Contains("backward") && Contains("[3]") && Contains("[2, 3]"));

  const std::string bad_dtype = message_of<std::invalid_argument>([&] { y.backward(ones({2, 3}, DType::float32)); });
  CHECK_THAT(bad_dtype, Contains("backward") && Contains("float32") && Contains("float64"));

  const std::string functional = message_of<std::invalid_argument>([&] { grad({y}, {x}); });
  CHECK_THAT(functional, Contains("grad") && Contains("[2, 3]") && Contains("pass grad_outputs"));
  // The fused step has no seed parameter: its message says what to do instead.
  const std::string fused = message_of<std::invalid_argument>([&] { backward_and_update(y, {}); });
  CHECK_THAT(fused, Contains("backward_and_update: the output has shape [2, 3]") &&
                        Contains("reduce the loss to one element first") && !Contains("pass one"));

  const std::string no_grad = message_of<std::logic_error>([] { f64({1}).backward(); });
  CHECK_THAT(no_grad, Contains("backward") && Contains("does not require grad") && Contains("[1]"));

  CHECK_FALSE(x.grad().defined());  // nothing was accumulated by the failed calls
}

TEST_CASE("errors: a second backward through a freed graph", "[autograd][errors]") {
  SECTION("Scalar: the same output twice") {
    Scalar a = Scalar::leaf(2.0), b = Scalar::leaf(3.0);
    Scalar y = a * b;
    y.backward();
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("backward") && Contains("second time") && Contains("mul") && Contains("retain_graph"));
    CHECK(a.grad() == 3.0);  // unchanged by the failed call
  }
  SECTION("Scalar: an output that reaches a node freed by an earlier backward") {
    Scalar a = Scalar::leaf(2.0), b = Scalar::leaf(3.0);
    Scalar y = exp(a * b);
    Scalar z = y + a;
    y.backward();
    const double a_grad = a.grad();
    const std::string msg = message_of<std::logic_error>([&] { z.backward(); });
    CHECK_THAT(msg, Contains("second time") && Contains("exp"));
    CHECK(a.grad() == a_grad);  // a failed sweep writes no leaf
  }
  SECTION("Scalar: after a new graph has been recorded") {
    Scalar a = Scalar::leaf(2.0);
    Scalar y = a * a;
    y.backward();
    Scalar other = a + 1.0;  // the tape is reused for the new graph
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("Scalar::backward") && Contains("second time") && Contains("retain_graph"));
    const std::string interior = message_of<std::logic_error>([&] { y.grad(); });
    CHECK_THAT(interior, Contains("Scalar::grad") && Contains("released"));
    const std::string functional = message_of<std::logic_error>([&] { grad({y}, {a}); });
    CHECK_THAT(functional, Contains("second time"));
  }
  SECTION("Tensor") {
    Tensor a = f64({2}, true), b = f64({2}, true);
    const Tensor y = sum(a * b);
    y.backward();
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("backward") && Contains("second time") && Contains("retain_graph"));
    CHECK((Contains("'sum'").match(msg) || Contains("'mul'").match(msg)));
    const std::string functional = message_of<std::logic_error>([&] { grad({y}, {a}); });
    CHECK_THAT(functional, Contains("second time"));
    CHECK(a.grad().to_vector() == std::vector<double>{0.5, 0.5});  // unchanged
  }
  SECTION("Tensor: an output that reaches a node freed by an earlier backward") {
    Tensor a = f64({2}, true);
    const Tensor h = exp(a);
    const Tensor y = sum(h);
    const Tensor z = sum(h * 2.0);
    y.backward();
    const std::vector<double> before = a.grad().to_vector();
    const std::string msg = message_of<std::logic_error>([&] { z.backward(); });
    CHECK_THAT(msg, Contains("second time") && Contains("'exp'"));
    CHECK(a.grad().to_vector() == before);
  }
}

TEST_CASE("errors: a tensor modified in place after an op saved it", "[autograd][errors]") {
  SECTION("a saved input, changed with +=") {
    Tensor x = f64({3}, true);
    Tensor w = full({3}, 2.0, DType::float64);  // saved by mul for dx = grad * w
    const Tensor y = sum(x * w);
    w += 1.0;
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("mul") && Contains("modified in place") && Contains("[3]"));
    CHECK_FALSE(x.grad().defined());  // never a silently wrong gradient
  }
  SECTION("a saved input, changed with set()") {
    Tensor x = f64({2, 2}, true);
    Tensor w = full({2, 2}, 2.0, DType::float64);
    const Tensor y = sum(matmul(x, w));
    w.set({0, 1}, 7.0);
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("matmul") && Contains("modified in place") && Contains("[2, 2]"));
  }
  SECTION("a saved output, changed in place while recording") {
    Tensor x = f64({3}, true);
    Tensor y = exp(x);  // exp saves its output
    y += 1.0;           // recorded (y is not a leaf), but it overwrites what exp saved
    const std::string msg = message_of<std::logic_error>([&] { sum(y).backward(); });
    CHECK_THAT(msg, Contains("exp") && Contains("modified in place"));
  }
  SECTION("changed through mutable_data()") {
    Tensor x = f64({3}, true);
    Tensor w = full({3}, 2.0, DType::float64);
    const Tensor y = sum(x / w);
    w.mutable_data<double>()[0] = 4.0;
    const std::string msg = message_of<std::logic_error>([&] { y.backward(); });
    CHECK_THAT(msg, Contains("div") && Contains("modified in place"));
  }
}

TEST_CASE("errors: in place on a leaf that requires grad while recording", "[autograd][errors]") {
  Tensor w = f64({3}, true);
  const std::string add = message_of<std::logic_error>([&] { w += 1.0; });
  CHECK_THAT(add, Contains("operator+=") && Contains("leaf") && Contains("[3]") && Contains("NoGradGuard"));
  const std::string sub = message_of<std::logic_error>([&] { w -= f64({3}); });
  CHECK_THAT(sub, Contains("operator-=") && Contains("leaf"));
  const std::string mul = message_of<std::logic_error>([&] { w *= 2.0; });
  CHECK_THAT(mul, Contains("operator*=") && Contains("leaf"));
  const std::string set = message_of<std::logic_error>([&] { w.set({1}, 3.0); });
  CHECK_THAT(set, Contains("Tensor::set") && Contains("leaf") && Contains("[3]"));
  CHECK(w.to_vector() == std::vector<double>{0.5, 0.5, 0.5});  // untouched

  // The same updates under NoGradGuard are what optimizers do: allowed.
  {
    NoGradGuard no_grad;
    w += 1.0;
    w.set({1}, 3.0);
  }
  CHECK(w.to_vector() == std::vector<double>{1.5, 3.0, 1.5});
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());

  const std::string non_leaf = message_of<std::logic_error>([&] { (w * 2.0).set_requires_grad(false); });
  CHECK_THAT(non_leaf, Contains("set_requires_grad") && Contains("mul"));

  // set() on an op's result while recording was not recorded: the gradient still flowed through the
  // overwritten element (x.grad [20, 16] for y = 2x; y[0] = 5; sum(y * y), instead of [0, 16]).
  Tensor x = tensor({1.0, 2.0}, TensorOptions(DType::float64).requires_grad(true));
  Tensor y = x * 2.0;
  const std::string result = message_of<std::logic_error>([&] { y.set({0}, 5.0); });
  CHECK_THAT(result, Contains("Tensor::set") && Contains("result of a recorded op ('mul')") && Contains("[2]"));
  CHECK(y.to_vector() == std::vector<double>{2.0, 4.0});  // untouched
  {
    NoGradGuard no_grad;  // allowed, as PyTorch under no_grad: the graph keeps y = 2x
    y.set({0}, 5.0);
  }
  CHECK(y.to_vector() == std::vector<double>{5.0, 4.0});
}

TEST_CASE("errors: Scalar misuse", "[autograd][errors]") {
  Scalar a = Scalar::leaf(1.5);
  Scalar y = a * 2.0;
  const std::string set_value = message_of<std::logic_error>([&] { y.set_value(3.0); });
  CHECK_THAT(set_value, Contains("Scalar::set_value") && Contains("leaves") && Contains("interior"));
  const std::string constant = message_of<std::logic_error>([] { Scalar(2.0).set_value(3.0); });
  CHECK_THAT(constant, Contains("Scalar::set_value") && Contains("constant"));
  const std::string zero = message_of<std::logic_error>([&] { y.zero_grad(); });
  CHECK_THAT(zero, Contains("Scalar::zero_grad"));
  const std::string req = message_of<std::logic_error>([&] { y.set_requires_grad(false); });
  CHECK_THAT(req, Contains("Scalar::set_requires_grad"));
  const std::string recorded = message_of<std::logic_error>([&] { y.grad_scalar(); });
  CHECK_THAT(recorded, Contains("Scalar::grad_scalar") && Contains("leaves"));

  const std::string constant_backward = message_of<std::logic_error>([] { (Scalar(2.0) * 3.0).backward(); });
  CHECK_THAT(constant_backward, Contains("Scalar::backward") && Contains("does not require grad"));
  Scalar frozen = Scalar::leaf(1.0, false);
  const std::string frozen_backward = message_of<std::logic_error>([&] { frozen.backward(); });
  CHECK_THAT(frozen_backward, Contains("Scalar::backward") && Contains("requires_grad"));
}

TEST_CASE("errors: functional grad misuse", "[autograd][errors]") {
  SECTION("Scalar") {
    Scalar a = Scalar::leaf(1.0), b = Scalar::leaf(2.0);
    const Scalar y = a * 3.0;
    const std::string unused = message_of<std::invalid_argument>([&] { grad({y}, {a, b}, {}, {.retain_graph = true}); });
    CHECK_THAT(unused, Contains("grad") && Contains("input 1") && Contains("allow_unused"));
    const std::string count = message_of<std::invalid_argument>([&] { grad({y}, {a}, {1.0, 2.0}); });
    CHECK_THAT(count, Contains("grad") && Contains("1 outputs") && Contains("2 grad_outputs"));
    const std::string constant = message_of<std::invalid_argument>([&] { grad({Scalar(3.0)}, {a}); });
    CHECK_THAT(constant, Contains("grad") && Contains("output 0") && Contains("does not require grad"));
    const std::string input = message_of<std::invalid_argument>([&] { grad({y}, {Scalar(1.0)}); });
    CHECK_THAT(input, Contains("grad") && Contains("input 0") && Contains("does not require grad"));
    // No inputs: refused before the sweep (it freed the graph and returned nothing).
    CHECK_THROWS_WITH(grad({y}, {}), Contains("grad: no inputs given"));
    CHECK(grad({y}, {a})[0].value() == 3.0);
  }
  SECTION("Tensor") {
    Tensor a = f64({2}, true), b = f64({3}, true);
    const Tensor y = sum(a * 3.0);
    const std::string unused = message_of<std::invalid_argument>([&] { grad({y}, {a, b}, {}, {.retain_graph = true}); });
    CHECK_THAT(unused, Contains("grad") && Contains("input 1") && Contains("[3]") && Contains("allow_unused"));
    const std::string count = message_of<std::invalid_argument>([&] { grad({y}, {a}, {Tensor(1.0), Tensor(1.0)}); });
    CHECK_THAT(count, Contains("grad") && Contains("1 outputs") && Contains("2 grad_outputs"));
    const std::string input = message_of<std::invalid_argument>([&] { grad({y}, {f64({2})}); });
    CHECK_THAT(input, Contains("grad") && Contains("input 0") && Contains("does not require grad"));
    const std::string none = message_of<std::invalid_argument>([&] { grad(std::vector<Tensor>{}, {a}); });
    CHECK_THAT(none, Contains("grad") && Contains("no outputs"));
    CHECK_THROWS_WITH(grad({y}, std::vector<Tensor>{}), Contains("grad: no inputs given"));
    CHECK(grad({y}, {a})[0].to_vector() == std::vector<double>{3, 3});
  }
}

TEST_CASE("errors: undefined tensors", "[autograd][errors]") {
  const Tensor undefined;
  CHECK_FALSE(undefined.defined());
  const std::string add = message_of<std::invalid_argument>([&] { undefined + f64({2}); });
  CHECK_THAT(add, Contains("add") && Contains("undefined"));
  const std::string shape = message_of<std::logic_error>([&] { undefined.shape(); });
  CHECK_THAT(shape, Contains("shape") && Contains("undefined"));
  const std::string sum_msg = message_of<std::invalid_argument>([&] { sum(undefined); });
  CHECK_THAT(sum_msg, Contains("sum") && Contains("undefined"));
}

// No Shape holds a negative dimension, however it is built or changed (a tensor of one would be
// sized from a negative count); nor more than kMaxDims dimensions.
TEST_CASE("errors: negative and too many dimensions in a Shape", "[autograd][errors]") {
  CHECK_THAT(message_of<std::invalid_argument>([] { Shape{2, -3}; }), Contains("negative dimension -3"));
  Shape s{2, 3};
  CHECK_THAT(message_of<std::invalid_argument>([&] { s.set(0, -3); }), Contains("negative dimension -3"));
  CHECK(s == Shape{2, 3});  // unchanged by the refused set
  CHECK_THAT(message_of<std::out_of_range>([&] { s.set(2, 1); }), Contains("dimension 2 of a 2-dimensional"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { s.push_back(-1); }), Contains("negative dimension -1"));
  CHECK(s.size() == 2);
  s.set(0, 4);
  s.push_back(5);
  CHECK(s == Shape{4, 3, 5});
  CHECK(zeros(s, DType::float64).numel() == 60);
  Shape full_rank;
  for (int i = 0; i < kMaxDims; ++i) full_rank.push_back(1);
  CHECK_THAT(message_of<std::invalid_argument>([&] { full_rank.push_back(1); }), Contains("at most 8 dimensions"));
}

TEST_CASE("errors: softmax_cross_entropy's shapes, targets and saved logits", "[autograd][errors]") {
  const Tensor x = f64({2, 3});
  CHECK_THAT(message_of<std::invalid_argument>([&] { softmax_cross_entropy(f64({2, 3, 4}), {0, 1}); }),
             Contains("softmax_cross_entropy") && Contains("[N, C] or [C]") && Contains("[2, 3, 4]"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { softmax_cross_entropy(x, {0, 1, 2}); }),
             Contains("softmax_cross_entropy") && Contains("3 target(s)") && Contains("[2, 3]"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { softmax_cross_entropy(f64({2, 0}), {0, 0}); }),
             Contains("softmax_cross_entropy") && Contains("no classes"));
  CHECK_THAT(message_of<std::out_of_range>([&] { softmax_cross_entropy(x, {0, 3}); }),
             Contains("softmax_cross_entropy") && Contains("target 3 of row 1") && Contains("[0, 3)"));
  CHECK_THAT(message_of<std::out_of_range>([&] { softmax_cross_entropy(f64({4}), {-1}); }),
             Contains("target -1 of row 0") && Contains("[4]"));
  // The logits are saved: changed in place before backward, the sweep throws, in both backwards.
  for (bool create_graph : {false, true}) {
    Tensor logits = f64({2, 3}, true);
    Tensor z = logits * 1.0;
    const Tensor l = sum(softmax_cross_entropy(z, {0, 2}));
    z += 1.0;
    const std::string msg =
        message_of<std::logic_error>([&] { grad({l}, {logits}, {}, {.create_graph = create_graph}); });
    CHECK_THAT(msg, Contains("softmax_cross_entropy") && Contains("modified in place"));
  }
}
