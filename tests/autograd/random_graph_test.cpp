// Random graphs, built by both engines and compared with each other and with central differences.
//
// The op tables (gradcheck_table_test.cpp) check each op alone on a few shapes. Here a generated
// program of 6 to 14 elementwise steps mixes them the way user code does: shared subexpressions, a
// node used by several consumers, numbers on either side, leaves of different broadcast shapes, and
// several outputs summed. Each program runs
//   - in plain doubles, one position of the output shape at a time (the reference values, and the
//     central differences of the loss);
//   - on Scalars, one graph per position over the leaves' elements (broadcasting by hand);
//   - on float64 Tensors (the kernels' broadcasting, the one-element fast paths, the reductions of
//     broadcast gradients) and on float32 Tensors;
// and every leaf element's gradient must agree. The Tensor graph is then run a second time
// (retain_graph: gradients double) and a third time (the freed graph must throw, leaving them).
// Then a node of each program is changed in place after recording: backward must throw (the change
// hit a tensor a rule saved) or give exactly the gradients of the unchanged graph. And Hessian-vector
// products through create_graph: both engines' recorded sweeps against each other and against
// central differences of the gradient.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/autograd/testing.h"

namespace chainrule {
namespace {

using testing::Numbers;

enum class Op { Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Sqrt, Sigmoid, Tanh, Relu, Abs, Erf, Expm1, Log1p, PlusNumber,
                TimesNumber, NumberMinus, NumberOver };
constexpr int kOps = static_cast<int>(Op::NumberOver) + 1;
constexpr const char* kOpNames[kOps] = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt",
                                        "sigmoid", "tanh", "relu", "abs", "erf", "expm1", "log1p",
                                        "x + c", "x * c", "c - x", "c / x"};

bool binary(Op op) { return op <= Op::Pow; }

struct Step {
  Op op;
  int a, b;  // operand nodes (b only for binary ops)
  double c;  // the number of the ops with one
};

// Nodes 0 .. leaves-1 are the leaves; step k defines node leaves + k.
struct Program {
  Shape out;                               // the broadcast shape of everything
  std::vector<Shape> leaf_shapes;          // each broadcastable to out
  std::vector<std::vector<double>> leaf_values;
  std::vector<Step> steps;
  std::vector<int> outputs;                // loss = sum over these nodes of sum over out's positions
  std::string str() const {
    std::ostringstream s;
    s << "out " << out.str() << "; leaves";
    for (const Shape& l : leaf_shapes) s << " " << l.str();
    const auto leaves = static_cast<int>(leaf_shapes.size());
    for (size_t k = 0; k < steps.size(); ++k) {
      const Step& t = steps[k];
      s << "; n" << leaves + static_cast<int>(k) << " = " << kOpNames[static_cast<int>(t.op)] << "(n" << t.a;
      if (binary(t.op)) s << ", n" << t.b;
      if (t.op >= Op::PlusNumber) s << ", " << t.c;
      s << ")";
    }
    s << "; loss from";
    for (int o : outputs) s << " n" << o;
    return s.str();
  }
};

double apply(Op op, double x, double y, double c) {
  switch (op) {
    case Op::Add: return x + y;
    case Op::Sub: return x - y;
    case Op::Mul: return x * y;
    case Op::Div: return x / y;
    case Op::Pow: return std::pow(x, y);
    case Op::Neg: return -x;
    case Op::Exp: return std::exp(x);
    case Op::Log: return std::log(x);
    case Op::Sqrt: return std::sqrt(x);
    case Op::Sigmoid: return 1 / (1 + std::exp(-x));
    case Op::Tanh: return std::tanh(x);
    case Op::Relu: return x > 0 ? x : 0.0;
    case Op::Abs: return std::abs(x);
    case Op::Erf: return std::erf(x);
    case Op::Expm1: return std::expm1(x);
    case Op::Log1p: return std::log1p(x);
    case Op::PlusNumber: return x + c;
    case Op::TimesNumber: return x * c;
    case Op::NumberMinus: return c - x;
    case Op::NumberOver: return c / x;
  }
  return 0;
}

// Where an op is smooth and well-conditioned enough for central differences: away from poles,
// kinks and the edges of its domain, and with a result of moderate size.
bool well_inside(Op op, double x, double y) {
  switch (op) {
    case Op::Div: return std::abs(y) > 0.25;
    case Op::Pow: return x > 0.25 && std::abs(y) < 3;
    case Op::Exp:
    case Op::Expm1: return x < 3;
    case Op::Log1p: return x > -0.75;
    case Op::Log:
    case Op::Sqrt: return x > 0.25;
    case Op::Relu:
    case Op::Abs: return std::abs(x) > 1e-3;
    case Op::NumberOver: return std::abs(x) > 0.25;
    default: return true;
  }
}

// The element of a leaf of shape `leaf` that position `p` of `out` reads (NumPy broadcasting).
int64_t broadcast_index(const Shape& leaf, const Shape& out, int64_t p) {
  int64_t index = 0, stride = 1;
  for (int d = out.size() - 1, e = leaf.size() - 1; d >= 0; --d, --e) {
    const int64_t coordinate = p % out[d];
    p /= out[d];
    if (e >= 0) {
      if (leaf[e] != 1) index += coordinate * stride;
      stride *= leaf[e];
    }
  }
  return index;
}

// The values of every node at every position of out, from the given leaf values.
std::vector<std::vector<double>> evaluate(const Program& g, const std::vector<std::vector<double>>& leaf_values) {
  const int64_t positions = g.out.numel();
  std::vector<std::vector<double>> v;
  for (size_t l = 0; l < g.leaf_shapes.size(); ++l) {
    v.emplace_back(positions);
    for (int64_t p = 0; p < positions; ++p) v[l][p] = leaf_values[l][broadcast_index(g.leaf_shapes[l], g.out, p)];
  }
  for (const Step& t : g.steps) {
    std::vector<double> r(positions);
    for (int64_t p = 0; p < positions; ++p) r[p] = apply(t.op, v[t.a][p], binary(t.op) ? v[t.b][p] : 0.0, t.c);
    v.push_back(std::move(r));
  }
  return v;
}

// Whether each node reaches the loss (a leaf that does not gets no gradient: undefined, as in
// PyTorch, for a Tensor; 0 for a Scalar).
std::vector<bool> reaches_loss(const Program& g) {
  const auto leaves = static_cast<int>(g.leaf_shapes.size());
  std::vector<bool> reaches(g.leaf_shapes.size() + g.steps.size(), false);
  for (int o : g.outputs) reaches[o] = true;
  for (int k = static_cast<int>(g.steps.size()) - 1; k >= 0; --k) {
    if (!reaches[leaves + k]) continue;
    reaches[g.steps[k].a] = true;
    if (binary(g.steps[k].op)) reaches[g.steps[k].b] = true;
  }
  return reaches;
}

double loss_of(const Program& g, const std::vector<std::vector<double>>& values) {
  double loss = 0;
  for (int o : g.outputs)
    for (double x : values[o]) loss += x;
  return loss;
}

Program generate(uint64_t seed) {
  Numbers rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng.index(n)); };
  static const Shape outs[] = {Shape{}, Shape{1}, Shape{4}, Shape{2, 3}, Shape{3, 1, 2}};
  Program g;
  g.out = outs[pick(5)];
  const int leaves = 2 + pick(3);
  for (int l = 0; l < leaves; ++l) {
    // Each dim of out, or 1; sometimes fewer leading dims.
    std::vector<int64_t> dims;
    for (int d = pick(g.out.size() + 1) == 0 ? 1 : 0; d < g.out.size(); ++d)
      dims.push_back(rng.uniform(0, 1) < 0.35 ? 1 : g.out[d]);
    g.leaf_shapes.emplace_back(dims);
    std::vector<double> values(static_cast<size_t>(g.leaf_shapes.back().numel()));
    for (double& x : values) x = rng.away_from_zero(-1.5, 1.5, 0.05);
    g.leaf_values.push_back(std::move(values));
  }
  std::vector<std::vector<double>> v = evaluate(g, g.leaf_values);
  const int steps = 6 + pick(9);
  while (static_cast<int>(g.steps.size()) < steps) {
    const int nodes = static_cast<int>(v.size());
    // Mostly one of the last few nodes, so that the graph is deep as well as wide.
    auto operand = [&] { return rng.uniform(0, 1) < 0.6 ? std::max(0, nodes - 1 - pick(3)) : pick(nodes); };
    const Step t{static_cast<Op>(pick(kOps)), operand(), operand(), rng.away_from_zero(-2, 2, 0.3)};
    std::vector<double> r(v[0].size());
    bool ok = true;
    for (size_t p = 0; p < r.size() && ok; ++p) {
      const double x = v[t.a][p], y = binary(t.op) ? v[t.b][p] : 0.0;
      r[p] = apply(t.op, x, y, t.c);
      ok = well_inside(t.op, x, y) && std::abs(r[p]) < 50;
    }
    if (!ok) continue;
    g.steps.push_back(t);
    v.push_back(std::move(r));
  }
  g.outputs = {static_cast<int>(v.size()) - 1};
  for (int extra = pick(3); extra > 0; --extra) g.outputs.push_back(leaves + pick(steps));
  return g;
}

// One step on either engine's values. A number on the left of a Scalar op is a plain double; a
// Tensor takes it as a zero-dimensional constant tensor of the operand's dtype.
template <class T>
T left_number(double c, const T& x) {
  if constexpr (std::is_same_v<T, Scalar>) {
    return Scalar(c);
  } else {
    return full({}, c, x.dtype());
  }
}

template <class T>
T run_step(const Step& t, const T& x, const T& y) {
  switch (t.op) {
    case Op::Add: return x + y;
    case Op::Sub: return x - y;
    case Op::Mul: return x * y;
    case Op::Div: return x / y;
    case Op::Pow: return pow(x, y);
    case Op::Neg: return -x;
    case Op::Exp: return exp(x);
    case Op::Log: return log(x);
    case Op::Sqrt: return sqrt(x);
    case Op::Sigmoid: return sigmoid(x);
    case Op::Tanh: return tanh(x);
    case Op::Relu: return relu(x);
    case Op::Abs: return abs(x);
    case Op::Erf: return erf(x);
    case Op::Expm1: return expm1(x);
    case Op::Log1p: return log1p(x);
    case Op::PlusNumber: return x + t.c;
    case Op::TimesNumber: return x * t.c;
    case Op::NumberMinus: return left_number(t.c, x) - x;
    case Op::NumberOver: return left_number(t.c, x) / x;
  }
  return x;
}

// The Scalar build's loss: one graph per position of out, over the leaves' elements.
Scalar scalar_loss(const Program& g, const std::vector<std::vector<Scalar>>& leaves) {
  Scalar loss = 0.0;
  for (int64_t p = 0; p < g.out.numel(); ++p) {
    std::vector<Scalar> nodes;
    for (size_t l = 0; l < leaves.size(); ++l) nodes.push_back(leaves[l][broadcast_index(g.leaf_shapes[l], g.out, p)]);
    for (const Step& t : g.steps) nodes.push_back(run_step(t, nodes[t.a], binary(t.op) ? nodes[t.b] : nodes[t.a]));
    for (int o : g.outputs) loss = loss + nodes[o];
  }
  return loss;
}

std::vector<std::vector<Scalar>> scalar_leaves(const std::vector<std::vector<double>>& leaf_values) {
  std::vector<std::vector<Scalar>> leaves;
  for (const auto& values : leaf_values) {
    leaves.emplace_back();
    for (double x : values) leaves.back().push_back(Scalar::leaf(x));
  }
  return leaves;
}

// The Scalar build through backward(): (loss, the gradient of every leaf element).
std::pair<double, std::vector<std::vector<double>>> run_scalars(const Program& g,
                                                                const std::vector<std::vector<double>>& leaf_values) {
  const std::vector<std::vector<Scalar>> leaves = scalar_leaves(leaf_values);
  double loss_value;
  {
    const Scalar loss = scalar_loss(g, leaves);
    loss.backward();
    loss_value = loss.value();
  }
  std::vector<std::vector<double>> grads;
  for (const auto& l : leaves) {
    grads.emplace_back();
    for (const Scalar& x : l) grads.back().push_back(x.grad());
  }
  return {loss_value, grads};
}

// The Tensor build in `dtype`: its loss (not yet differentiated), its leaves and every node.
struct TensorBuild {
  Tensor loss;
  std::vector<Tensor> leaves, nodes;
};

TensorBuild tensor_build(const Program& g, DType dtype) {
  TensorBuild b;
  for (size_t l = 0; l < g.leaf_shapes.size(); ++l)
    b.nodes.push_back(from_vector(g.leaf_values[l], g.leaf_shapes[l], TensorOptions(dtype).requires_grad(true)));
  b.leaves = b.nodes;
  for (const Step& t : g.steps) b.nodes.push_back(run_step(t, b.nodes[t.a], binary(t.op) ? b.nodes[t.b] : b.nodes[t.a]));
  for (int o : g.outputs) {
    const Tensor term = sum(expand(b.nodes[o], g.out));
    b.loss = b.loss.defined() ? b.loss + term : term;
  }
  return b;
}

constexpr int kPrograms = 1000;

TEST_CASE("random graphs: Scalar and Tensor engines agree with each other and with central differences",
          "[autograd][random]") {
  int compared = 0;
  for (int seed = 1; seed <= kPrograms; ++seed) {
    const Program g = generate(static_cast<uint64_t>(seed));
    INFO("program " << seed << ": " << g.str());
    const double want_loss = loss_of(g, evaluate(g, g.leaf_values));
    const std::vector<bool> reaches = reaches_loss(g);
    const auto [loss_value, scalar_grads] = run_scalars(g, g.leaf_values);
    REQUIRE(loss_value == Approx(want_loss).epsilon(1e-12).margin(1e-12));

    // The Scalar gradients against central differences of the plain-double program.
    for (size_t l = 0; l < g.leaf_values.size(); ++l) {
      for (size_t i = 0; i < g.leaf_values[l].size(); ++i) {
        auto moved = g.leaf_values;
        auto loss_at = [&](double x) {
          moved[l][i] = x;
          return loss_of(g, evaluate(g, moved));
        };
        const double numeric = testing::central_difference(loss_at, g.leaf_values[l][i]);
        INFO("leaf " << l << " element " << i << ": Scalar " << scalar_grads[l][i] << ", numeric " << numeric);
        CHECK(testing::close(scalar_grads[l][i], numeric, 1e-6, 1e-5));
      }
    }

    for (DType dtype : {DType::float64, DType::float32}) {
      const bool f64 = dtype == DType::float64;
      INFO((f64 ? "float64" : "float32") << " Tensors");
      const double tol = f64 ? 1e-10 : 2e-3;
      auto [loss, leaves, nodes] = tensor_build(g, dtype);
      loss.backward({.retain_graph = true});
      CHECK(loss.item() == Approx(want_loss).epsilon(tol).margin(tol));
      std::vector<std::vector<double>> first;
      for (size_t l = 0; l < leaves.size(); ++l) {
        INFO("leaf " << l << " of shape " << g.leaf_shapes[l].str());
        REQUIRE(leaves[l].grad().defined() == reaches[l]);
        if (!reaches[l]) {
          first.emplace_back(g.leaf_values[l].size(), 0.0);
          for (double d : scalar_grads[l]) CHECK(d == 0.0);
          continue;
        }
        REQUIRE(leaves[l].grad().shape() == g.leaf_shapes[l]);
        first.push_back(leaves[l].grad().to_vector());
        for (size_t i = 0; i < first[l].size(); ++i) {
          INFO("element " << i << ": Tensor " << first[l][i] << ", Scalar " << scalar_grads[l][i]);
          CHECK(first[l][i] == Approx(scalar_grads[l][i]).epsilon(tol).margin(tol));
        }
      }
      // The retained graph again: every gradient doubles (exactly: x + x). Then the graph is freed,
      // and a third backward throws without touching them.
      loss.backward();
      std::vector<std::vector<double>> twice(leaves.size());
      for (size_t l = 0; l < leaves.size(); ++l) {
        if (!reaches[l]) continue;
        twice[l] = leaves[l].grad().to_vector();
        for (size_t i = 0; i < twice[l].size(); ++i) CHECK(twice[l][i] == 2 * first[l][i]);
      }
      CHECK_THROWS_AS(loss.backward(), std::logic_error);
      for (size_t l = 0; l < leaves.size(); ++l)
        if (reaches[l]) CHECK(leaves[l].grad().to_vector() == twice[l]);
    }
    ++compared;
  }
  CHECK(compared == kPrograms);
}

// H u, the Hessian of the loss times u (one vector per leaf), through the functional grad with
// create_graph: d/dx (sum_k dloss/dx_k u_k). A loss whose gradient is constant has H u = 0.
std::vector<std::vector<double>> scalar_hvp(const Program& g, const std::vector<std::vector<double>>& u) {
  const std::vector<std::vector<Scalar>> leaves = scalar_leaves(g.leaf_values);
  std::vector<Scalar> inputs;
  std::vector<double> weights;
  for (size_t l = 0; l < leaves.size(); ++l) {
    inputs.insert(inputs.end(), leaves[l].begin(), leaves[l].end());
    weights.insert(weights.end(), u[l].begin(), u[l].end());
  }
  const std::vector<Scalar> first =
      grad({scalar_loss(g, leaves)}, inputs, {}, {.create_graph = true, .allow_unused = true});
  Scalar s = 0.0;
  for (size_t k = 0; k < first.size(); ++k) s = s + first[k] * weights[k];
  std::vector<double> flat(inputs.size(), 0.0);
  if (s.requires_grad()) {
    const std::vector<Scalar> second = grad({s}, inputs, {}, {.allow_unused = true});
    for (size_t k = 0; k < second.size(); ++k) flat[k] = second[k].value();
  }
  std::vector<std::vector<double>> out;
  size_t k = 0;
  for (const auto& l : leaves) {
    out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(k), flat.begin() + static_cast<std::ptrdiff_t>(k + l.size()));
    k += l.size();
  }
  return out;
}

std::vector<std::vector<double>> tensor_hvp(const Program& g, const std::vector<std::vector<double>>& u) {
  const auto [loss, leaves, nodes] = tensor_build(g, DType::float64);
  const std::vector<Tensor> first = grad({loss}, leaves, {}, {.create_graph = true, .allow_unused = true});
  Tensor s;
  for (size_t l = 0; l < leaves.size(); ++l) {
    if (!first[l].defined()) continue;
    const Tensor term = sum(first[l] * from_vector(u[l], g.leaf_shapes[l], DType::float64));
    s = s.defined() ? s + term : term;
  }
  std::vector<std::vector<double>> out;
  std::vector<Tensor> second;
  if (s.defined() && s.requires_grad()) second = grad({s}, leaves, {}, {.allow_unused = true});
  for (size_t l = 0; l < leaves.size(); ++l) {
    if (l < second.size() && second[l].defined())
      out.push_back(second[l].to_vector());
    else
      out.emplace_back(g.leaf_values[l].size(), 0.0);
  }
  return out;
}

TEST_CASE("random graphs: a node changed in place after recording: backward throws or is exact",
          "[autograd][random]") {
  // Version counters: changing a tensor that some op saved for its backward must make that backward
  // throw (naming the op); changing one that no rule reads must leave every gradient exactly as
  // without the change. Never a silently different gradient. A node that a mul reaching the loss
  // takes as an operand is always saved (mul's rule reads both operands), so it must throw.
  int threw = 0, exact = 0;
  for (int seed = 1; seed <= kPrograms; ++seed) {
    const Program g = generate(static_cast<uint64_t>(seed));
    const std::vector<bool> reaches = reaches_loss(g);
    const auto leaves = static_cast<int>(g.leaf_shapes.size());
    Numbers rng(static_cast<uint64_t>(seed) + 4242);
    const int changed = leaves + static_cast<int>(rng.index(static_cast<int64_t>(g.steps.size())));
    INFO("program " << seed << ": " << g.str() << "; n" << changed << " += 0.5 after recording");
    bool saved_by_mul = false;
    for (size_t k = 0; k < g.steps.size(); ++k)
      saved_by_mul |= g.steps[k].op == Op::Mul && reaches[leaves + static_cast<int>(k)] &&
                      (g.steps[k].a == changed || g.steps[k].b == changed);

    TensorBuild want = tensor_build(g, DType::float64);
    want.loss.backward();
    TensorBuild b = tensor_build(g, DType::float64);
    {
      NoGradGuard no_grad;
      b.nodes[changed] += 0.5;
    }
    try {
      b.loss.backward();
      CHECK_FALSE(saved_by_mul);
      for (int l = 0; l < leaves; ++l) {
        REQUIRE(b.leaves[l].grad().defined() == want.leaves[l].grad().defined());
        if (want.leaves[l].grad().defined()) CHECK(b.leaves[l].grad().to_vector() == want.leaves[l].grad().to_vector());
      }
      ++exact;
    } catch (const std::logic_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("modified in place"));
      for (const Tensor& leaf : b.leaves) CHECK_FALSE(leaf.grad().defined());  // a failed backward writes nothing
      ++threw;
    }
  }
  // Both outcomes occur often, so neither branch above is vacuous.
  CHECK(threw >= 250);
  CHECK(exact >= 600);
}

TEST_CASE("random graphs: Scalar leaves given new values after recording keep the recorded ones",
          "[autograd][random]") {
  // set_value on a leaf changes what later graphs see, never a graph already recorded: its backward
  // gives exactly the gradients at the values it was recorded with.
  for (int seed = 1; seed <= kPrograms; seed += 3) {
    const Program g = generate(static_cast<uint64_t>(seed));
    INFO("program " << seed << ": " << g.str());
    const auto [want_loss, want] = run_scalars(g, g.leaf_values);
    const std::vector<std::vector<Scalar>> leaves = scalar_leaves(g.leaf_values);
    {
      const Scalar loss = scalar_loss(g, leaves);
      for (const auto& l : leaves)
        for (Scalar x : l) x.set_value(x.value() + 0.25);
      loss.backward();
      CHECK(loss.value() == want_loss);
    }
    for (size_t l = 0; l < leaves.size(); ++l)
      for (size_t i = 0; i < leaves[l].size(); ++i) CHECK(leaves[l][i].grad() == want[l][i]);
  }
}

TEST_CASE("random graphs: Hessian-vector products through create_graph agree", "[autograd][random]") {
  // The recorded sweeps of both engines (every rule written once, run on Scalars or Tensors) against
  // each other, and the Scalar one against central differences of the gradient along u.
  constexpr int kHvpPrograms = 300;
  constexpr double h = 1e-5;
  for (int seed = 1; seed <= kHvpPrograms; ++seed) {
    const Program g = generate(static_cast<uint64_t>(seed));
    INFO("program " << seed << ": " << g.str());
    Numbers rng(static_cast<uint64_t>(seed) + 7777);
    std::vector<std::vector<double>> u, plus = g.leaf_values, minus = g.leaf_values;
    for (size_t l = 0; l < g.leaf_values.size(); ++l) {
      u.push_back(rng.uniform_vector(g.leaf_values[l].size(), -1, 1));
      for (size_t i = 0; i < u[l].size(); ++i) {
        plus[l][i] += h * u[l][i];
        minus[l][i] -= h * u[l][i];
      }
    }
    const auto hs = scalar_hvp(g, u), ht = tensor_hvp(g, u);
    const auto gp = run_scalars(g, plus).second, gm = run_scalars(g, minus).second;
    for (size_t l = 0; l < hs.size(); ++l) {
      for (size_t i = 0; i < hs[l].size(); ++i) {
        const double numeric = (gp[l][i] - gm[l][i]) / (2 * h);
        INFO("leaf " << l << " element " << i << ": Scalar " << hs[l][i] << ", Tensor " << ht[l][i] << ", numeric "
                     << numeric);
        CHECK(testing::close(hs[l][i], numeric, 1e-5, 1e-4));
        CHECK(ht[l][i] == Approx(hs[l][i]).epsilon(1e-9).margin(1e-9));
      }
    }
  }
}

TEST_CASE("random graphs: the generator covers every op, shape and leaf layout", "[autograd][random]") {
  // The agreement above is only as strong as what the programs contain: each op in hundreds of them,
  // and many leaves that broadcast, one-element outputs (the Tensor fast paths) and nodes with
  // several consumers.
  std::vector<int> op_count(kOps, 0);
  int broadcast_leaves = 0, one_element_outputs = 0, shared_nodes = 0;
  for (int seed = 1; seed <= kPrograms; ++seed) {
    const Program g = generate(static_cast<uint64_t>(seed));
    std::vector<int> uses(g.leaf_shapes.size() + g.steps.size(), 0);
    for (const Step& t : g.steps) {
      ++op_count[static_cast<int>(t.op)];
      ++uses[t.a];
      if (binary(t.op)) ++uses[t.b];
    }
    for (const Shape& s : g.leaf_shapes) broadcast_leaves += s.numel() < g.out.numel() ? 1 : 0;
    one_element_outputs += g.out.numel() == 1 ? 1 : 0;
    for (int u : uses) shared_nodes += u > 1 ? 1 : 0;
  }
  for (int k = 0; k < kOps; ++k) {
    INFO("op " << kOpNames[k]);
    CHECK(op_count[k] >= 200);
  }
  CHECK(broadcast_leaves >= 1000);
  CHECK(one_element_outputs >= 300);
  CHECK(shared_nodes >= 3000);
}

}  // namespace
}  // namespace chainrule
