// DOT export (autograd/dot.h): every node is listed, kinds are drawn apart, edges carry local
// derivatives (Scalar) or shapes (Tensor), labels are escaped, and the text parses with graphviz.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "autograd/dot.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"

using namespace chainrule;
using Catch::Matchers::Contains;

namespace {

bool have_dot() { return std::system("dot -V > /dev/null 2>&1") == 0; }

// Renders `text` with `dot -Tsvg` and returns the SVG; skips (with a WARN) when graphviz is missing.
std::string render_svg(const std::string& text) {
  if (!have_dot()) {
    WARN("graphviz's dot is not installed: the DOT text is not rendered");
    return {};
  }
  const auto dir = std::filesystem::temp_directory_path();
  const std::string stem = fmt::format("chainrule_dot_test_{}", std::random_device{}());
  const auto dot_file = dir / (stem + ".dot"), svg_file = dir / (stem + ".svg"), err_file = dir / (stem + ".err");
  std::ofstream(dot_file) << text;
  const std::string command =
      fmt::format("dot -Tsvg '{}' -o '{}' 2> '{}'", dot_file.string(), svg_file.string(), err_file.string());
  const int status = std::system(command.c_str());
  std::stringstream svg, err;
  svg << std::ifstream(svg_file).rdbuf();
  err << std::ifstream(err_file).rdbuf();
  INFO("dot's messages: " << err.str());
  CHECK(status == 0);
  CHECK(err.str().empty());  // no syntax errors or warnings either
  std::filesystem::remove(dot_file);
  std::filesystem::remove(svg_file);
  std::filesystem::remove(err_file);
  return svg.str();
}

// The line of the DOT text that declares node `id`.
std::string node_line(const std::string& text, const std::string& id) {
  const std::size_t at = text.find("\n  " + id + " [");
  if (at == std::string::npos) return {};
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

// The id of the node whose declaration contains `part` ("n3").
std::string id_of(const std::string& text, const std::string& part) {
  const std::size_t at = text.find(part);
  if (at == std::string::npos) return "<none>";
  const std::size_t line = text.rfind('\n', at) + 1;
  const std::size_t start = text.find_first_not_of(' ', line);
  return text.substr(start, text.find(' ', start) - start);
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("dot: the lecture network's picture lists every node and renders", "[autograd][dot]") {
  const Scalar x1 = Scalar::leaf(-0.97, false).set_label("X1");
  const Scalar x2 = Scalar::leaf(-0.80, false).set_label("X2");
  const Scalar w1 = Scalar::leaf(-0.2).set_label("w IN1->H1");
  const Scalar w2 = Scalar::leaf(-0.4).set_label("w IN2->H1");
  const Scalar b = Scalar::leaf(0.1).set_label("b H1");
  const Scalar v = Scalar::leaf(-0.6).set_label("w H1->ON");
  Scalar z = x1 * w1 + x2 * w2 + b;
  z.set_label("z_H1");
  Scalar h = sigmoid(z);
  h.set_label("H1");
  Scalar on = sigmoid(h * v - 0.6);
  on.set_label("ON");
  Scalar c = 0.5 * pow(on - 0.0, 2.0);
  c.set_label("C");
  c.backward();

  const std::string text = to_dot(c, {.title = "observation 1"});
  const std::vector<ScalarNodeView> view = graph_view(c);
  CHECK(text.starts_with("digraph chainrule {"));
  // Every node is listed, except repeated uses of a named input (X1, X2), drawn once.
  std::size_t drawn = 0;
  for (const ScalarNodeView& n : view) {
    const bool listed = !node_line(text, fmt::format("n{}", n.id)).empty();
    drawn += listed ? 1 : 0;
    if (!n.is_constant || n.label.empty()) CHECK(listed);
  }
  CHECK(count(text, "X1 = -0.97") == 1);
  CHECK(count(text, " -> ") == [&] {
    std::size_t edges = 0;
    for (const ScalarNodeView& n : view) edges += n.inputs.size();
    return edges;
  }());
  for (const char* name : {"X1 = -0.97", "w IN1->H1", "b H1", "z_H1", "H1", "ON", "C"}) CHECK_THAT(text, Contains(name));

  // Parameters, inputs and the output are drawn differently.
  std::size_t w_id = 0, x_id = 0;
  for (const ScalarNodeView& n : view) {
    if (n.label == "w H1->ON") w_id = n.id;
    if (n.label == "X1") x_id = n.id;
  }
  CHECK_THAT(node_line(text, fmt::format("n{}", w_id)), Contains("fillcolor=\"#dbeafe\"") && Contains(fmt::format("grad {:.4g}", v.grad())));
  CHECK_THAT(node_line(text, fmt::format("n{}", x_id)), Contains("shape=ellipse"));
  // A neuron's output shows its Err, its input sum its Backprop Err (the slides' names).
  CHECK_THAT(node_line(text, id_of(text, "\"H1\\n")), Contains(fmt::format("Err {:.4g}", h.grad())));
  CHECK_THAT(node_line(text, id_of(text, "\"z_H1\\n")), Contains(fmt::format("BPE {:.4g}", z.grad())));
  CHECK_THAT(node_line(text, fmt::format("n{}", view.size() - 1)), Contains("peripheries=2") && Contains("grad 1"));
  // The edge from w H1->ON to its mul carries the local derivative d(H1 * w)/dw = H1 = 0.6489, and
  // edges from inputs are dashed.
  CHECK_THAT(text, Contains(fmt::format("n{} -> ", w_id)));
  CHECK_THAT(text, Contains("[label=\"0.6489\"]"));
  CHECK_THAT(text, Contains(fmt::format("n{} -> n", x_id)));
  CHECK(count(text, "style=dashed") >= 2);
  CHECK_THAT(text, Contains("observation 1"));

  const std::string svg = render_svg(text);
  if (!svg.empty()) {
    CHECK_THAT(svg, Contains("<svg"));
    CHECK(count(svg, "class=\"node\"") == drawn);
  }
}

TEST_CASE("dot: labels are quoted and escaped", "[autograd][dot]") {
  Scalar a = Scalar::leaf(1.5).set_label("say \"hi\" \\ {a|b} <c>\nnext line");
  Scalar y = a * a;
  const std::string text = to_dot(y);
  CHECK_THAT(text, Contains(R"(say \"hi\" \\ {a|b} <c>\nnext line)"));
  CHECK(dot_quote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(dot_quote(std::string("a\0b\tc", 5)) == R"("a b c")");  // a NUL would end the DOT string
  // No backward yet: values only.
  CHECK_THAT(text, Contains("value 2.25"));
  CHECK_THAT(text, !Contains("\\ngrad "));
  render_svg(text);
  CHECK_THROWS_AS(to_dot(y, {.rankdir = "sideways"}), std::invalid_argument);
  // A named input used twice is one node with two out-edges.
  const Scalar in = Scalar::leaf(2.0, false).set_label("X");
  const Scalar w = Scalar::leaf(0.5).set_label("w");
  const std::string twice = to_dot(in * w + in * w * w);
  CHECK(count(twice, "X = 2") == 1);
  CHECK(count(twice, id_of(twice, "X = 2") + " -> ") == 2);
  CHECK_THAT(to_dot(y, {.legend = false, .rankdir = "TB"}), Contains("rankdir=TB") && !Contains("label=\"blue"));
}

TEST_CASE("dot: a Tensor graph shows ops with shapes, named parameters and constants", "[autograd][dot]") {
  Generator gen(1);
  const TensorOptions param = TensorOptions(DType::float64).requires_grad();
  const Tensor w = uniform({2, 3}, -1, 1, gen, param), b = uniform({3}, -1, 1, gen, param);
  const Tensor x = tensor({{-0.97, -0.80}}, DType::float64);
  const Tensor h = sigmoid(matmul(x, w) + b);
  const Tensor loss = sum(h * h);
  loss.backward();
  const std::string text = to_dot(loss, {.show_where = true, .names = {{"hidden.weight", w}, {"hidden.bias", b}}});
  for (const char* part : {"matmul", "add", "sigmoid", "mul", "sum", "hidden.weight", "hidden.bias", "[2, 3]", "[1, 3]",
                           "constant", "dot_test.cpp:"})
    CHECK_THAT(text, Contains(part));
  CHECK_THAT(text, Contains(".grad mean"));  // parameters show a summary of their accumulated .grad
  // Every recorded op is a node: matmul, add, sigmoid, mul, sum.
  CHECK(count(text, "fillcolor=\"#ffffff\"") + count(text, "peripheries=2") == 5);
  const std::string svg = render_svg(text);
  if (!svg.empty()) CHECK(count(svg, "class=\"node\"") == 5 + 2 + 1);  // ops, parameters, x
}

TEST_CASE("dot: a very long label, an ampersand and bytes that are not UTF-8 render", "[autograd][dot]") {
  // Graphviz refuses strings over 16,384 bytes, decodes &amp; and warns on invalid UTF-8.
  Scalar x = Scalar::leaf(1.0).set_label(std::string(20000, 'x'));
  Scalar y = (x * 2.0).set_label("<b>&amp;</b> \xff\xfe");
  y.backward();
  const std::string text = to_dot(y);
  CHECK_THAT(text, Contains("&amp;amp;") && Contains("\xEF\xBF\xBD") && Contains("xxx..."));
  CHECK(text.size() < 10000);
  render_svg(text);
  CHECK(dot_quote("a&b") == "\"a&amp;b\"");
}

// Found by a probe of the Tensor pictures against an independent computation.
TEST_CASE("dot: a Tensor picture says what a parameter's gradient is and names ops and parameters apart",
          "[autograd][dot]") {
  const TensorOptions param = TensorOptions(DType::float64).requires_grad();
  const Tensor w = tensor({1.0, 2.0}, param), s = tensor({0.5, 0.5}, param);
  const Tensor h = w * 2.0;
  const Tensor y1 = sum(h * s), y2 = sum(w * 3.0);
  y2.backward();
  // No backward reached y1: w's box shows its accumulated .grad (from y2), said to be one, and no
  // number is presented as d y1 / d w.
  const std::string text = to_dot(y1, {.names = {{"sum", w}, {"hidden", h}}});
  CHECK_THAT(text, Contains(".grad [3, 3]") && Contains("accumulated gradient"));
  CHECK_THAT(text, !Contains("\\ngrad "));
  // A parameter named like an op says that it is a parameter; an op's output can be named.
  CHECK_THAT(text, Contains("\"sum\\nparameter\\n[2]"));
  CHECK_THAT(text, Contains("\"hidden\\nmul\\n[2]"));
  // A leaf whose requires_grad was turned off after recording is drawn as an input.
  Tensor v = tensor({1.0, 1.0}, param);
  const Tensor z = sum(w * v);
  v.set_requires_grad(false);
  CHECK_THAT(to_dot(z, {.names = {{"v", v}}}), Contains("\"v\\ninput (requires_grad off)"));
  render_svg(text);
}
