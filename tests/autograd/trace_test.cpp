// Chain-rule traces (autograd/trace.h): the lecture's observation 1 reads like the slides (Err and
// Backprop Err per node), every term is upstream x local, and nodes with several consumers sum them.
#include <algorithm>
#include <cmath>
#include <span>
#include <stdexcept>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "autograd/dot.h"
#include "autograd/tensor.h"
#include "autograd/trace.h"

using namespace chainrule;
using Catch::Matchers::Contains;

namespace {

double round_to(double x, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(x * scale) / scale;
}

// The lecture's 2-3-1 sigmoid network at its initial weights, on observation 1
// (x = (-0.97, -0.80), y = 0), with the cost 1/2 (y_hat - y)^2.
struct Lecture {
  std::vector<Scalar> params;  // kept alive: leaves
  Scalar C;
};

Lecture observation1() {
  const double w_in[2][3] = {{-0.2, 0.4, -1.0}, {-0.4, -0.7, -0.8}};
  const double w_out[3] = {-0.6, -0.6, -0.3};
  const double bias[3] = {0.1, -0.2, 0.4};
  Lecture l;
  const Scalar x1 = Scalar::leaf(-0.97, false).set_label("X1");
  const Scalar x2 = Scalar::leaf(-0.80, false).set_label("X2");
  Scalar z_on = Scalar::leaf(-0.6).set_label("b ON");
  l.params.push_back(z_on);
  for (int h = 0; h < 3; ++h) {
    const std::string H = fmt::format("H{}", h + 1);
    const Scalar w1 = Scalar::leaf(w_in[0][h]).set_label(fmt::format("w IN1->{}", H));
    const Scalar w2 = Scalar::leaf(w_in[1][h]).set_label(fmt::format("w IN2->{}", H));
    const Scalar b = Scalar::leaf(bias[h]).set_label(fmt::format("b {}", H));
    const Scalar v = Scalar::leaf(w_out[h]).set_label(fmt::format("w {}->ON", H));
    l.params.insert(l.params.end(), {w1, w2, b, v});
    Scalar z = x1 * w1 + x2 * w2 + b;
    z.set_label(fmt::format("z_{}", H));
    Scalar a = sigmoid(z);
    a.set_label(H);
    z_on = z_on + a * v;
  }
  z_on.set_label("z_ON");
  Scalar on = sigmoid(z_on);
  on.set_label("ON");
  const Scalar y = Scalar::leaf(0.0, false).set_label("y");
  l.C = 0.5 * pow(on - y, 2.0);
  l.C.set_label("C");
  return l;
}

}  // namespace

TEST_CASE("trace: the lecture's observation 1 has the slides' Err and Backprop Err", "[autograd][trace]") {
  Lecture l = observation1();
  l.C.backward();
  const ChainRuleTrace t = trace(l.C);

  // Forward values (slides: H 0.65 0.49 0.88, output 0.18, input sum of ON -1.55).
  CHECK(round_to(t.node("H1").value, 2) == 0.65);
  CHECK(round_to(t.node("H2").value, 2) == 0.49);
  CHECK(round_to(t.node("H3").value, 2) == 0.88);
  CHECK(round_to(t.node("ON").value, 2) == 0.18);
  CHECK(round_to(t.node("z_ON").value, 2) == -1.55);
  CHECK(round_to(t.node("z_H1").value, 3) == 0.614);

  // Err_ON = y_hat - y = 0.18; BPE_ON = 0.18 * f'(-1.55) = 0.025.
  const TraceNeuron& on = t.neuron("ON");
  CHECK(round_to(on.err, 2) == 0.18);
  CHECK(on.err == Approx(t.node("ON").value));  // the lecture's 1/2 makes dC/dy_hat = y_hat - y
  CHECK(round_to(on.bpe, 3) == 0.025);
  CHECK(on.bpe == Approx(on.err * on.derivative));
  CHECK(on.derivative == Approx(on.value * (1 - on.value)));

  // Hidden layer: Err = BPE_ON * w_H->ON, BPE = Err * f'(z_H).
  const double err[3] = {-0.015, -0.015, -0.008}, bpe[3] = {-0.003, -0.004, -0.001};
  const double w_out[3] = {-0.6, -0.6, -0.3};
  for (int h = 0; h < 3; ++h) {
    const std::string H = fmt::format("H{}", h + 1);
    INFO(H);
    const TraceNeuron& n = t.neuron(H);
    CHECK(round_to(n.err, 3) == err[h]);
    CHECK(round_to(n.bpe, 3) == bpe[h]);
    // The product that made Err: one term, the BPE of ON arriving through H * w, times w.
    const std::vector<TraceTerm>& terms = t.node(H).terms;
    REQUIRE(terms.size() == 1);
    CHECK(terms[0].upstream == Approx(on.bpe));
    CHECK(terms[0].local == w_out[h]);
    CHECK(t.nodes[terms[0].consumer].name == fmt::format("{0} * w {0}->ON", H));
    // BPE is z_H's gradient.
    CHECK(t.nodes[n.input].name == fmt::format("z_{}", H));
    CHECK(t.nodes[n.input].grad == Approx(n.bpe));
  }

  // The parameters' gradients are the engine's.
  for (const Scalar& p : l.params) CHECK(t.node(p.label()).grad == Approx(p.grad()).margin(1e-15));
  // Inputs and the target are constants: named, but no gradient flows to them.
  CHECK(t.node("X1").is_constant);
  CHECK(t.node("X1").terms.empty());
  CHECK(t.node("y").is_constant);
}

TEST_CASE("trace: the text and Markdown tables show the slides' products", "[autograd][trace]") {
  Lecture l = observation1();
  l.C.backward();
  const ChainRuleTrace t = trace(l.C);
  const std::string text = t.to_text({.digits = 3, .fixed = true});
  CHECK_THAT(text, Contains("Chain-rule trace of C"));
  CHECK_THAT(text, Contains("Backprop Err"));
  CHECK_THAT(text, Contains("0.025 x -0.600 (H1 * w H1->ON)"));  // Err_H1 = BPE_ON x w
  CHECK_THAT(text, Contains("-0.015 x 0.228 (H1)"));              // BPE_H1 = Err_H1 x f'(z_H1)
  CHECK_THAT(text, Contains("0.175 x 0.144 (ON)"));               // BPE_ON
  // One row per node that carries a gradient, and for neurons one more row each.
  std::size_t with_gradient = 0;
  for (const TraceNode& n : t.nodes) with_gradient += n.is_constant ? 0 : 1;
  CHECK(t.backward_order.size() == with_gradient);
  const std::string markdown = t.to_markdown();
  CHECK_THAT(markdown, Contains("| neuron | a | Err |"));
  CHECK_THAT(markdown, Contains("| --- |"));
  CHECK_THAT(markdown, Contains("| `H1` | 0.6489 | -0.01518 | 0.0253 × -0.6 (`H1 * w H1->ON`) | 0.2278 | -0.003459 |"));
  for (std::size_t id : t.backward_order) CHECK_THAT(markdown, Contains(fmt::format("| `{}` |", t.nodes[id].name)));
}

TEST_CASE("trace: a label with a line break or a pipe keeps the Markdown table one row per node", "[autograd][trace]") {
  Scalar a = Scalar::leaf(2.0).set_label("w|1\nsecond line");
  const Scalar y = a * 3.0;
  y.backward();
  const std::string markdown = trace(y).to_markdown();
  CHECK_THAT(markdown, Contains("`w\\|1 second line`"));
  CHECK_THAT(markdown, !Contains("\nsecond line"));
}

TEST_CASE("trace: Backprop Err is dC/dz also when z feeds more than its activation", "[autograd][trace]") {
  // C = a + z, a = sigmoid(z): dC/dz = a (1 - a) + 1. The neuron row used to print Err x f'(z)
  // (0.1966) as dC/dz, against z's own gradient (1.197) in the node table and in to_dot.
  Scalar w = Scalar::leaf(0.5).set_label("w");
  const Scalar z = (w * 2.0).set_label("z");
  const Scalar a = sigmoid(z).set_label("a");
  const Scalar c = a + z;
  c.backward();
  const ChainRuleTrace t = trace(c);
  const double s = a.value();
  CHECK(t.neuron("a").bpe == Approx(s * (1 - s) + 1).epsilon(1e-12));
  CHECK(t.neuron("a").bpe == Approx(z.grad()).epsilon(1e-15));
  CHECK(t.neuron("a").err * t.neuron("a").derivative == Approx(s * (1 - s)).epsilon(1e-12));
}

TEST_CASE("trace: a node with several consumers sums their contributions", "[autograd][trace]") {
  // micrograd's trap: b = a + a, c = b * b.
  Scalar a = Scalar::leaf(3.0).set_label("a");
  Scalar b = a + a;
  b.set_label("b");
  Scalar c = b * b + a;
  c.set_label("c");
  c.backward();
  const ChainRuleTrace t = trace(c);
  const TraceNode& na = t.node("a");
  REQUIRE(na.terms.size() == 3);  // from b (twice: both operands) and from c
  double sum = 0;
  for (const TraceTerm& term : na.terms) {
    CHECK(term.contribution == term.upstream * term.local);
    sum += term.contribution;
  }
  CHECK(na.grad == sum);
  CHECK(na.grad == a.grad());
  CHECK(a.grad() == 2 * 2 * 6.0 + 1);
  CHECK(t.node("b").terms.size() == 2);
  CHECK(t.node("b").grad == 12.0);
  const std::string text = t.to_text();
  CHECK_THAT(text, Contains("(sum of 3 terms)"));
  CHECK_THAT(text, Contains("(sum of 2 terms)"));
  // Unlabelled ops are named by the expression they compute.
  CHECK(t.nodes[t.node("c").inputs[0]].name == "b * b");
}

TEST_CASE("trace: names, seeds and mistakes", "[autograd][trace]") {
  Scalar x = Scalar::leaf(0.5).set_label("x");
  Scalar y = (x - 1.0) * (x + 2.0);
  CHECK_THROWS_WITH(trace(y), Contains("call root.backward() first"));
  y.backward(2.0);  // a seed other than 1
  const ChainRuleTrace t = trace(y);
  CHECK(t.seed == 2.0);
  CHECK(t.node("(x - 1) * (x + 2)").grad == 2.0);
  CHECK(t.node("x").grad == Approx(2.0 * ((0.5 + 2.0) + (0.5 - 1.0))));
  CHECK_THROWS_AS(t.node("nope"), std::out_of_range);
  CHECK_THROWS_WITH(t.neuron("nope"), Contains("no activation named 'nope'"));
  CHECK(t.neurons.empty());
  CHECK_THAT(t.to_text(), Contains("Chain-rule trace of (x - 1) * (x + 2) = -1.25 (backward seed d(root)/d(root) = 2)"));
}

namespace {

// The lecture's network as Tensors: the slides' weights and observation 1.
struct LectureTensors {
  TensorOptions param = TensorOptions(DType::float64).requires_grad();
  Tensor W1 = tensor({{-0.2, 0.4, -1.0}, {-0.4, -0.7, -0.8}}, param);
  Tensor b1 = tensor({0.1, -0.2, 0.4}, param);
  Tensor W2 = tensor({{-0.6}, {-0.6}, {-0.3}}, param);
  Tensor b2 = tensor({-0.6}, param);
  Tensor x = tensor({{-0.97, -0.80}}, DType::float64);
};

}  // namespace

TEST_CASE("trace: a Tensor backward of the lecture's network shows Err and Backprop Err as gradients",
          "[autograd][trace]") {
  const auto [param, W1, b1, W2, b2, x] = LectureTensors();
  const Tensor z_h = matmul(x, W1) + b1;
  const Tensor h = sigmoid(z_h);
  const Tensor z_on = matmul(h, W2) + b2;
  const Tensor out = sigmoid(z_on);
  const Tensor C = sum(0.5 * pow(out - 0.0, 2.0));
  const TensorTrace t = trace_backward(C, {{"W1", W1}, {"b1", b1}, {"W2", W2}, {"b2", b2}});

  // Ops that share a name are numbered in recording order: the hidden sigmoid is sigmoid#1, the
  // output's sigmoid#2 (the backward ran it first). The add before each is z, whose gradient is
  // the Backprop Err.
  const TensorTraceNode& output = t.node("sigmoid#2");
  const TensorTraceNode& hidden = t.node("sigmoid#1");
  CHECK(output.id < hidden.id);  // the trace lists nodes in the order the backward ran them
  CHECK(output.shape == Shape{1, 1});
  CHECK(hidden.shape == Shape{1, 3});
  CHECK(round_to(output.grad.item(), 2) == 0.18);  // Err_ON
  const std::vector<double> err = hidden.grad.to_vector();
  CHECK(round_to(err[0], 3) == -0.015);
  CHECK(round_to(err[1], 3) == -0.015);
  CHECK(round_to(err[2], 3) == -0.008);
  const TensorTraceNode& z_hidden = t.nodes[hidden.id + 1];  // the add that fed it ran next
  REQUIRE(z_hidden.terms.size() == 1);
  CHECK(t.nodes[z_hidden.terms[0].consumer].name == "sigmoid#1");
  const std::vector<double> bpe = z_hidden.grad.to_vector();
  CHECK(round_to(bpe[0], 3) == -0.003);
  CHECK(round_to(bpe[1], 3) == -0.004);
  CHECK(round_to(bpe[2], 3) == -0.001);
  CHECK(round_to(t.nodes[output.id + 1].grad.item(), 3) == 0.025);  // BPE_ON

  // Parameters: named, with the gradients backward accumulated into them.
  for (const auto& [name, p] : std::vector<std::pair<std::string, Tensor>>{{"W1", W1}, {"b1", b1}, {"W2", W2}, {"b2", b2}}) {
    INFO(name);
    const TensorTraceNode& n = t.node(name);
    CHECK(n.is_leaf);
    CHECK(n.value.to_vector() == p.to_vector());
    const std::vector<double> a = n.grad.to_vector(), g = p.grad().to_vector();
    REQUIRE(a.size() == g.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(g[i]).margin(1e-15));
  }
  CHECK(t.nodes.front().is_root);
  CHECK(t.nodes.front().name == "sum");
  const std::string text = t.to_text();
  CHECK_THAT(text, Contains("Chain-rule trace of a Tensor backward from sum") && Contains("[1, 3]") &&
                       Contains("trace_test.cpp:") && Contains("W1"));
  CHECK_THAT(t.to_markdown(), Contains("| `W1` | parameter | [2, 3] |"));
  CHECK_FALSE(hidden.value.defined());  // an op's output the caller did not name: the graph keeps none
  CHECK_THAT(text, Contains("value"));
}

TEST_CASE("trace: a Tensor trace shows the values of the ops' outputs named in the call", "[autograd][trace]") {
  const auto [param, W1, b1, W2, b2, x] = LectureTensors();
  const Tensor h = sigmoid(matmul(x, W1) + b1);
  const Tensor out = sigmoid(matmul(h, W2) + b2);
  const Tensor C = sum(0.5 * pow(out - 0.0, 2.0));
  const TensorTrace t = trace_backward(C, {{"W1", W1}, {"H", h}, {"ON", out}});
  // The slides' hidden values 0.65 0.49 0.88 and output 0.18.
  const std::vector<double> hv = t.node("H").value.to_vector();
  REQUIRE(hv.size() == 3);
  CHECK(round_to(hv[0], 2) == 0.65);
  CHECK(round_to(hv[1], 2) == 0.49);
  CHECK(round_to(hv[2], 2) == 0.88);
  CHECK(round_to(t.node("ON").value.item(), 2) == 0.18);
  CHECK(t.node("H").op == "sigmoid");
  CHECK_FALSE(t.node("matmul#1").value.defined());
  CHECK_THAT(t.to_text(TraceOptions{.digits = 2, .fixed = true}), Contains("[0.65, 0.49, 0.88]"));
  CHECK_THAT(t.to_markdown(TraceOptions{.digits = 2, .fixed = true}),
             Contains("| `ON` | sigmoid | [1, 1] | trace_test.cpp:") && Contains("| 0.18 | 0.18 | 0.18 (`sub`) |"));
}

TEST_CASE("trace: a Tensor used by several ops sums what their backwards sent", "[autograd][trace]") {
  const Tensor a = tensor({1.0, 2.0, 3.0}, TensorOptions(DType::float64).requires_grad());
  const Tensor b = exp(a);
  const Tensor loss = sum(b * b + b);
  const TensorTrace t = trace_backward(loss, {{"a", a}});
  const TensorTraceNode& e = t.node("exp");
  REQUIRE(e.terms.size() == 3);  // twice from the mul, once from the add
  Tensor sum_of_terms = e.terms[0].contribution + e.terms[1].contribution + e.terms[2].contribution;
  const std::vector<double> s = sum_of_terms.to_vector(), g = e.grad.to_vector();
  for (std::size_t i = 0; i < 3; ++i) CHECK(s[i] == Approx(g[i]));
  CHECK_THAT(t.to_text(), Contains("(sum of 3 terms)"));
  CHECK_THROWS_AS(t.node("nope"), std::out_of_range);
  CHECK_THROWS_AS(trace_backward(a), std::invalid_argument);  // a leaf: nothing recorded
  CHECK_THROWS_WITH(trace_backward(b), Contains("trace_backward: the root has shape [3] (3 elements)"));
}

// Found by a probe that re-did every trace's arithmetic from its printed numbers.
TEST_CASE("trace: Backprop Err is complete when z's other consumer comes before a", "[autograd][trace]") {
  Scalar x = Scalar::leaf(0.5).set_label("x");
  Scalar z = (x * 2.0).set_label("z");
  Scalar w = (z * 3.0).set_label("w");  // recorded before a: processed after it in backward order
  Scalar a = sigmoid(z).set_label("a");
  Scalar c = (a + w).set_label("c");
  c.backward();
  const ChainRuleTrace t = trace(c);
  CHECK(t.neuron("a").bpe == Approx(z.grad()));  // 3.197, not a's share 0.1966 alone
  CHECK(t.neuron("a").bpe == Approx(3.0 + 0.19661193));
}

TEST_CASE("trace: a root the backward did not start at says so", "[autograd][trace]") {
  Scalar x = Scalar::leaf(2.0).set_label("x");
  Scalar y = (x * x).set_label("y");
  Scalar z = (y * 3.0).set_label("z");
  z.backward();
  const ChainRuleTrace ty = trace(y);
  CHECK_FALSE(ty.from_root);
  CHECK(ty.seed == 3.0);  // dz/dy, not dy/dy
  CHECK_THAT(ty.to_text(), Contains("did not start here") && Contains("y's own is 3") && !Contains("dy/dy"));
  const ChainRuleTrace tz = trace(z);
  CHECK(tz.from_root);
  CHECK_THAT(tz.to_text(), Contains("(backward seed dz/dz = 1)"));
}

TEST_CASE("trace: a parameter switched off after recording shows no gradient", "[autograd][trace]") {
  Scalar x = Scalar::leaf(2.0).set_label("x");
  Scalar z = (x * 3.0).set_label("z");
  x.set_requires_grad(false);
  z.backward();
  const ChainRuleTrace t = trace(z);
  CHECK(t.node("x").is_constant);
  CHECK(t.node("x").terms.empty());
  CHECK(x.grad() == 0.0);
}

TEST_CASE("trace: labels with line breaks, backticks and non-ASCII letters keep the tables whole",
          "[autograd][trace]") {
  Scalar p = Scalar::leaf(1.0).set_label("a`b");
  Scalar q = Scalar::leaf(2.0).set_label("θ₁");
  Scalar r = (p * q).set_label("C\n2");
  r.backward();
  const ChainRuleTrace t = trace(r);
  const std::string text = t.to_text(), markdown = t.to_markdown();
  CHECK(text.substr(0, text.find('\n')).find("C 2") != std::string::npos);  // the header on one line
  CHECK(text.find("dC\n") == std::string::npos);
  CHECK_THAT(markdown, Contains("`` a`b ``"));
  // The op column starts at the same character in both parameter rows.
  auto op_column = [&](const std::string& name) {
    const std::size_t line = text.find("\n  " + name + " ") + 1;
    const std::string row = text.substr(line, text.find('\n', line) - line);
    const std::size_t bytes = row.find("parameter");
    return std::count_if(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(bytes),
                         [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; });
  };
  CHECK(op_column("a`b") == op_column("θ₁"));
}

TEST_CASE("trace: a negated operand of ^ is bracketed", "[autograd][trace]") {
  Scalar x = Scalar::leaf(2.0).set_label("x");
  Scalar y = pow(-x, 2.0);
  y.backward();
  CHECK(trace(y).nodes.back().name == "(-x) ^ 2");
}

TEST_CASE("trace: Tensor summaries count NaNs beside the range of the numbers", "[autograd][trace]") {
  Tensor a = tensor({NAN, 2.0, 3.0, 4.0, 5.0}, TensorOptions(DType::float64).requires_grad(true));
  const std::string dot = to_dot(sum(a * 2.0), {.names = {{"a", a}}});  // the parameter's values, summarised
  CHECK_THAT(dot, Contains("range [2, 5] and 1 NaN"));
}

TEST_CASE("trace: two nodes computing the same expression are told apart, and NaN prints as nan", "[autograd][trace]") {
  Scalar x = Scalar::leaf(0.5).set_label("x");
  Scalar y = tanh(x) + tanh(x) * 2.0;
  y.backward();
  const ChainRuleTrace t = trace(y);
  std::vector<std::string> tanhs;
  for (const TraceNode& n : t.nodes)
    if (n.op == "tanh") tanhs.push_back(n.name);
  REQUIRE(tanhs.size() == 2);
  CHECK(tanhs[0] != tanhs[1]);
  CHECK_THAT(tanhs[0], Catch::Matchers::StartsWith("tanh(x)#"));
  const double g0 = t.node(tanhs[0]).grad, g1 = t.node(tanhs[1]).grad;  // 1 and 2, in either order
  CHECK(std::min(g0, g1) == Approx(1.0));
  CHECK(std::max(g0, g1) == Approx(2.0));
  Scalar n = Scalar::leaf(-NAN).set_label("n");
  Scalar m = (n * 1.0).set_label("m");
  m.backward();
  CHECK_THAT(trace(m).to_text(), Contains("nan") && !Contains("-nan"));
}

TEST_CASE("trace: after a backward from another output, gradients are that output's, paths outside included",
          "[autograd][trace]") {
  // h = x * x, O = h + 10 x: dO/dx = 2x + 10 = 16. Traced at h, x showed 6 (only the paths through
  // h), and so did to_dot.
  Scalar x = Scalar::leaf(3.0).set_label("x");
  Scalar h = (x * x).set_label("h");
  Scalar o = (h + 10.0 * x).set_label("O");
  o.backward();
  const ChainRuleTrace t = trace(h);
  CHECK_FALSE(t.from_root);
  CHECK(t.node("x").grad == 16.0);
  CHECK(t.node("x").grad == x.grad());
  CHECK(t.node("x").outside == 10.0);
  CHECK_THAT(t.to_text(), Contains("10 (from outside this trace)") && Contains("= 16 (sum of 3 terms)"));
  CHECK_THAT(to_dot(h), Contains("grad 16"));
  // From the root itself nothing comes from outside.
  CHECK(trace(o).node("x").outside == 0.0);

  // A node a later backward reached again (u, through P) no longer holds O's gradient: it shows
  // the sum of its terms through g, not 0 and not P's.
  Scalar w = Scalar::leaf(1.5).set_label("w");
  Scalar u = (w * 2.0).set_label("u");
  Scalar g = (u * u).set_label("g");
  Scalar o2 = (g + u).set_label("O2");
  o2.backward({.retain_graph = true});
  Scalar p = (u * 3.0).set_label("P");
  p.backward();
  const ChainRuleTrace tg = trace(g);
  CHECK_FALSE(tg.from_root);
  CHECK(tg.node("u").grad == 2 * 3.0);  // dO2/dg x dg/du = 1 x 2u, u = 3
  CHECK(tg.node("u").outside == 0.0);
}

TEST_CASE("trace: a node the backward reached with a gradient of exactly 0 is traced", "[autograd][trace]") {
  // relu at z < 0 passes 0: trace(z) said "no backward has reached this Scalar", and to_dot left
  // out every gradient.
  Scalar y = Scalar::leaf(-1.0).set_label("y");
  Scalar z = (y * 2.0).set_label("z");
  Scalar c = (relu(z) * 3.0 + y).set_label("C");
  c.backward();
  const ChainRuleTrace t = trace(z);
  CHECK(t.reached);
  CHECK(t.seed == 0.0);
  CHECK(t.node("y").grad == 1.0);  // from C directly
  CHECK_THAT(to_dot(z), Contains("grad 1"));
  Scalar fresh = (Scalar::leaf(1.0) * 2.0).set_label("fresh");
  CHECK_THROWS_WITH(trace(fresh), Contains("no backward has reached this Scalar"));
}

TEST_CASE("trace: Markdown survives backticks, emphasis and HTML in names and custom op names", "[autograd][trace]") {
  auto sq = [](std::span<const double> v) { return v[0] * v[0]; };
  auto dsq = [](double g, std::span<const double> v, double) { return std::vector<double>{2 * g * v[0]}; };
  Scalar p = Scalar::leaf(1.0).set_label("a``b");
  Scalar q = custom_op("<img src=x>*b*|", {p}, sq, dsq).set_label("C_1");
  q.backward();
  const std::string md = trace(q).to_markdown();
  CHECK_THAT(md, Contains("``` a``b ```"));               // a fence longer than the run inside
  CHECK_THAT(md, Contains("\\<img src=x\\>\\*b\\*\\|"));  // the op cell escaped, '|' for the table
  CHECK_THAT(md, Contains("d(root)/d(root)"));            // C_1 is not one plain word: not in dC_1/dC_1
  CHECK_THAT(trace(q).to_text(), !Contains("\n|"));
  CHECK_THROWS_WITH(custom_op("", {p}, sq, dsq), Contains("custom_op: the name is empty"));
}

TEST_CASE("trace: unlabelled leaves' expressions computed twice are told apart", "[autograd][trace]") {
  Scalar x = Scalar::leaf(2.0);
  Scalar c = x * x + x * x;
  c.backward();
  const ChainRuleTrace t = trace(c);
  std::vector<std::string> names;
  for (const TraceNode& n : t.nodes) names.push_back(n.name);
  std::sort(names.begin(), names.end());
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
}

// Found by a probe of the Tensor traces against an independent computation.
TEST_CASE("trace: Tensor node names are unique, and a leaf turned off after recording gets no gradient",
          "[autograd][trace]") {
  const TensorOptions param = TensorOptions(DType::float64).requires_grad();
  const Tensor m = tensor({1.0, 2.0}, param), s = tensor({0.5}, param), u = tensor({3.0, 4.0}, param);
  const Tensor x = tensor({1.0, -1.0}, DType::float64);
  // Parameters named like the ops ("mul", "sum") and like the automatic names ("parameter#1").
  const Tensor h = x * m + s;
  const Tensor loss = sum(h * u);
  const TensorTrace t = trace_backward(loss, {{"mul", m}, {"sum", s}, {"parameter#1", x}, {"hidden", h}});
  std::set<std::string> seen;
  for (const TensorTraceNode& n : t.nodes) CHECK(seen.insert(n.name).second);
  CHECK(t.node("mul").is_leaf);  // the name the caller gave is kept
  CHECK(t.node("sum").is_leaf);
  CHECK(t.node("sum").grad.to_vector() == std::vector<double>{7.0});
  CHECK(t.node("hidden").op == "add");  // an op named by the tensor it produced
  CHECK(t.node("sum#1").op == "sum");   // the op whose name was taken is numbered
  CHECK(t.node("mul#1").op == "mul");
  CHECK(t.node("parameter#2").is_leaf);  // u: "parameter#1" was taken by a caller's name
  // v's requires_grad is turned off after the graph was recorded: the engine gives it nothing,
  // and the trace shows it as an input with no gradient.
  Tensor v = tensor({1.0, 1.0}, param);
  const Tensor w = tensor({1.0, 2.0}, param);
  const Tensor l2 = sum(w * v);
  v.set_requires_grad(false);
  const TensorTrace t2 = trace_backward(l2, {{"w", w}, {"v", v}});
  CHECK(t2.node("v").op == "input");
  CHECK_FALSE(t2.node("v").grad.defined());
  CHECK(t2.node("v").terms.empty());
  CHECK_FALSE(v.grad().defined());
  CHECK(t2.node("w").grad.to_vector() == std::vector<double>{1.0, 1.0});
}
