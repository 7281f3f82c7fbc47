// Random compositions of the Tensor shape ops, reductions and products, checked with gradcheck.
//
// The op table checks each op alone. Here a generated program of 3 to 7 steps passes one tensor
// through transpose, permute, reshape, slice, sum/mean/max over a dim (with and without keepdim),
// matmul with a new leaf, broadcasting arithmetic with a new leaf of fewer or unit dims, concat and
// stack, and elementwise functions, in any order its shapes allow; every leaf's gradient is checked
// against central differences (gradcheck), and every fourth program's Hessian-vector product
// (gradgradcheck). What it guards is the engine's bookkeeping between ops: gradients of the right
// shape reaching the right elements whatever came before.
#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tests/autograd/testing.h"

namespace chainrule {
namespace {

using testing::Numbers;

enum class Kind { Transpose, Permute, Reshape, Slice, Sum, Mean, Max, Matmul, Broadcast, Concat, Stack, Unary };
constexpr int kKinds = static_cast<int>(Kind::Unary) + 1;
constexpr const char* kKindNames[kKinds] = {"transpose", "permute", "reshape", "slice", "sum", "mean",
                                            "max", "matmul", "broadcast", "concat", "stack", "unary"};

struct Step {
  Kind kind;
  std::vector<int64_t> ints;  // dims, a shape, or (dim, start, stop), as the kind needs
  bool keepdim = false;
  int variant = 0;            // which function, operation or partner the kind applies
  int leaf = -1;              // the input a matmul or broadcast step reads (index into inputs)
};

struct ShapeProgram {
  std::vector<Shape> leaves;  // leaf 0 is the one the program starts from
  std::vector<Step> steps;
  std::string str() const {
    std::ostringstream s;
    s << "x " << leaves[0].str();
    for (const Step& t : steps) {
      s << "; " << kKindNames[static_cast<int>(t.kind)] << "(";
      for (int64_t v : t.ints) s << v << " ";
      if (t.keepdim) s << "keepdim ";
      s << "v" << t.variant;
      if (t.leaf >= 0) s << " with leaf " << t.leaf << " " << leaves[t.leaf].str();
      s << ")";
    }
    return s.str();
  }
};

Tensor apply(const Step& t, const Tensor& x, const std::vector<Tensor>& in) {
  switch (t.kind) {
    case Kind::Transpose: return transpose(x, t.ints[0], t.ints[1]);
    case Kind::Permute: return permute(x, t.ints);
    case Kind::Reshape: return reshape(x, t.ints);
    case Kind::Slice: return slice(x, t.ints[0], t.ints[1], t.ints[2]);
    case Kind::Sum: return sum(x, t.ints, t.keepdim);
    case Kind::Mean: return mean(x, t.ints, t.keepdim);
    case Kind::Max: return max(x, t.ints, t.keepdim);
    case Kind::Matmul: return matmul(x, in[t.leaf]);
    case Kind::Broadcast: return t.variant == 0 ? x * in[t.leaf] : (t.variant == 1 ? x + in[t.leaf] : in[t.leaf] - x);
    case Kind::Concat: return concat({x, sigmoid(x)}, t.ints[0]);
    case Kind::Stack: return stack({tanh(x), x}, t.ints[0]);
    case Kind::Unary: return t.variant == 0 ? sigmoid(x) : (t.variant == 1 ? tanh(x) : x * x);
  }
  return x;
}

ShapeProgram generate(uint64_t seed) {
  Numbers rng(seed);
  ShapeProgram g;
  std::vector<int64_t> dims;
  for (int64_t d = 1 + rng.index(3); d > 0; --d) dims.push_back(1 + rng.index(4));
  g.leaves.emplace_back(dims);
  std::vector<int64_t> s = dims;  // the current shape
  const int64_t steps = 3 + rng.index(5);
  while (static_cast<int64_t>(g.steps.size()) < steps) {
    const auto rank = static_cast<int64_t>(s.size());
    Step t{static_cast<Kind>(rng.index(kKinds)), {}};
    std::vector<int64_t> next;
    switch (t.kind) {
      case Kind::Transpose:
        if (rank < 2) continue;
        t.ints = {rng.index(rank), rng.index(rank)};
        next = s;
        std::swap(next[t.ints[0]], next[t.ints[1]]);
        break;
      case Kind::Permute: {
        if (rank < 2) continue;
        std::vector<int64_t> order(s.size());
        for (int64_t i = 0; i < rank; ++i) order[i] = i;
        for (int64_t i = rank - 1; i > 0; --i) std::swap(order[i], order[rng.index(i + 1)]);
        t.ints = order;
        for (int64_t d : order) next.push_back(s[d]);
        break;
      }
      case Kind::Reshape: {
        int64_t n = 1;
        for (int64_t d : s) n *= d;
        t.variant = static_cast<int>(rng.index(3));
        if (t.variant == 0) next = {n};                                       // flatten
        if (t.variant == 1) next = s, next.insert(next.begin(), 1);           // a leading unit dim
        if (t.variant == 2) next = std::vector<int64_t>(s.rbegin(), s.rend());  // the dims reversed
        if (next.size() > 4) continue;
        t.ints = next;
        if (t.variant == 0 && rng.index(2) == 0) t.ints = {-1};  // the inferred dim
        break;
      }
      case Kind::Slice: {
        if (rank < 1) continue;
        const int64_t d = rng.index(rank);
        if (s[d] < 2) continue;
        const int64_t start = rng.index(s[d] - 1), stop = start + 1 + rng.index(s[d] - start);
        t.ints = {d, start, stop};
        next = s;
        next[d] = stop - start;
        break;
      }
      case Kind::Sum:
      case Kind::Mean:
      case Kind::Max: {
        if (rank < 1) continue;
        const int64_t d = rng.index(rank);
        t.ints = {d == rank - 1 && rng.index(2) == 0 ? -1 : d};  // sometimes counted from the end
        t.keepdim = rng.index(2) == 0;
        next = s;
        if (t.keepdim)
          next[d] = 1;
        else
          next.erase(next.begin() + d);
        break;
      }
      case Kind::Matmul: {
        if (rank < 1) continue;
        const int64_t k = 1 + rng.index(3);
        t.leaf = static_cast<int>(g.leaves.size());
        g.leaves.push_back(Shape{s.back(), k});
        next = s;
        next.back() = k;
        if (rank == 1) next = {k};
        break;
      }
      case Kind::Broadcast: {
        // Each dim of s, or 1; sometimes without the leading dim.
        std::vector<int64_t> partner;
        for (int64_t d = rank > 0 && rng.index(3) == 0 ? 1 : 0; d < rank; ++d) partner.push_back(rng.index(3) == 0 ? 1 : s[d]);
        t.variant = static_cast<int>(rng.index(3));
        t.leaf = static_cast<int>(g.leaves.size());
        g.leaves.emplace_back(partner);
        next = s;
        break;
      }
      case Kind::Concat:
      case Kind::Stack: {
        if (t.kind == Kind::Concat && rank < 1) continue;
        const int64_t d = rng.index(t.kind == Kind::Concat ? rank : rank + 1);
        t.ints = {d};
        next = s;
        if (t.kind == Kind::Concat)
          next[d] *= 2;
        else
          next.insert(next.begin() + d, 2);
        if (next.size() > 4) continue;
        break;
      }
      case Kind::Unary:
        t.variant = static_cast<int>(rng.index(3));
        next = s;
        break;
    }
    int64_t n = 1;
    for (int64_t d : next) n *= d;
    if (n > 48) continue;  // keeps the finite differences cheap
    g.steps.push_back(t);
    s = next;
  }
  return g;
}

std::vector<Tensor> leaves_of(const ShapeProgram& g, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> in;
  for (const Shape& s : g.leaves) in.push_back(uniform(s, -1, 1, gen, TensorOptions(DType::float64).requires_grad()));
  return in;
}

TensorFunction function_of(const ShapeProgram& g) {
  return [g](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    for (const Step& t : g.steps) x = apply(t, x, in);
    return x;
  };
}

constexpr int kShapePrograms = 400;

TEST_CASE("random shape programs: gradients against central differences", "[autograd][random]") {
  for (int seed = 1; seed <= kShapePrograms; ++seed) {
    const ShapeProgram g = generate(static_cast<uint64_t>(seed));
    INFO("program " << seed << ": " << g.str());
    const GradcheckReport r = gradcheck(function_of(g), leaves_of(g, static_cast<uint64_t>(seed)));
    INFO(r.to_string());
    CHECK(r.passed);
    CHECK(r.checked > 0);
  }
}

TEST_CASE("random shape programs: Hessian-vector products against central differences", "[autograd][random]") {
  for (int seed = 4; seed <= kShapePrograms; seed += 4) {
    const ShapeProgram g = generate(static_cast<uint64_t>(seed));
    INFO("program " << seed << ": " << g.str());
    const GradcheckReport r = gradgradcheck(function_of(g), leaves_of(g, static_cast<uint64_t>(seed)));
    INFO(r.to_string());
    CHECK(r.passed);
  }
}

TEST_CASE("random shape programs: the generator covers every kind of step", "[autograd][random]") {
  std::vector<int> count(kKinds, 0);
  int keepdim = 0, reversed_dims = 0, zero_dim_results = 0;
  for (int seed = 1; seed <= kShapePrograms; ++seed) {
    const ShapeProgram g = generate(static_cast<uint64_t>(seed));
    for (const Step& t : g.steps) {
      ++count[static_cast<int>(t.kind)];
      keepdim += t.keepdim ? 1 : 0;
      reversed_dims += t.kind == Kind::Reshape && t.variant == 2 ? 1 : 0;
    }
    zero_dim_results += function_of(g)(leaves_of(g, 1)).dim() == 0 ? 1 : 0;
  }
  for (int k = 0; k < kKinds; ++k) {
    INFO("kind " << kKindNames[k]);
    CHECK(count[k] >= 50);
  }
  CHECK(keepdim >= 50);
  CHECK(reversed_dims >= 20);
  CHECK(zero_dim_results >= 5);
}

}  // namespace
}  // namespace chainrule
