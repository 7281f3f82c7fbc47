// The lecture's first observation, backpropagated and explained: the chain-rule trace (Err and
// Backprop Err per node, with the products that made them), the graph picture, and a gradcheck of
// the whole thing. docs/tutorial.md walks through this program's output.
//
//   lecture_trace                          the trace as text tables
//   lecture_trace --markdown               the trace as Markdown tables (what docs/tutorial.md shows)
//   lecture_trace --fixed 3                numbers rounded to 3 decimals, as on the slides
//   lecture_trace --dot observation1.dot   also write the graph in DOT; render it with
//                                          dot -Tsvg observation1.dot -o observation1.svg
//   lecture_trace --tensor                 also the trace of the same network built from Tensors
//   lecture_trace --custom-op              also check a custom op's backward, a right one and a wrong one
//   lecture_trace --input-gradients        treat X1 and X2 as leaves that require grad, to see how the
//                                          three hidden units' contributions add up at an input
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/dot.h"
#include "autograd/gradcheck.h"
#include "autograd/trace.h"
#include "examples/cli.h"

using namespace chainrule;

namespace {

// The slides' initial weights and observation 1: x = (-0.97, -0.80), y = 0.
constexpr double kWIn[2][3] = {{-0.2, 0.4, -1.0}, {-0.4, -0.7, -0.8}};  // IN1 -> H, IN2 -> H
constexpr double kBiasH[3] = {0.1, -0.2, 0.4};
constexpr double kWOut[3] = {-0.6, -0.6, -0.3};  // H -> ON
constexpr double kBiasOn = -0.6;
constexpr double kX[2] = {-0.97, -0.80};
constexpr double kY = 0.0;

// The network's cost C = 1/2 (ON - y)^2 on observation 1, from labelled Scalars: parameters are
// leaves, the inputs and the target are leaves that do not require grad (constants with a name).
// `p` holds the 13 parameter values in the order of parameter_names().
Scalar cost(const std::vector<Scalar>& p, bool input_gradients) {
  const Scalar x1 = Scalar::leaf(kX[0], input_gradients).set_label("X1");
  const Scalar x2 = Scalar::leaf(kX[1], input_gradients).set_label("X2");
  std::vector<Scalar> h(3);
  for (int j = 0; j < 3; ++j) {
    Scalar z = x1 * p[3 * j] + x2 * p[3 * j + 1] + p[3 * j + 2];
    z.set_label(fmt::format("z_H{}", j + 1));
    h[j] = sigmoid(z);
    h[j].set_label(fmt::format("H{}", j + 1));
  }
  Scalar z_on = h[0] * p[9] + h[1] * p[10] + h[2] * p[11] + p[12];
  z_on.set_label("z_ON");
  Scalar on = sigmoid(z_on);
  on.set_label("ON");
  const Scalar y = Scalar::leaf(kY, false).set_label("y");
  // The lecture's 1/2 makes dC/dON = ON - y, the slides' Err at ON.
  Scalar c = 0.5 * pow(on - y, 2.0);
  c.set_label("C");
  return c;
}

std::vector<std::string> parameter_names() {
  std::vector<std::string> names;
  for (int j = 1; j <= 3; ++j)
    for (const std::string& n : {fmt::format("w IN1->H{}", j), fmt::format("w IN2->H{}", j), fmt::format("b H{}", j)})
      names.push_back(n);
  for (int j = 1; j <= 3; ++j) names.push_back(fmt::format("w H{}->ON", j));
  names.push_back("b ON");
  return names;
}

std::vector<Scalar> parameters() {
  std::vector<double> values;
  for (int j = 0; j < 3; ++j) values.insert(values.end(), {kWIn[0][j], kWIn[1][j], kBiasH[j]});
  values.insert(values.end(), {kWOut[0], kWOut[1], kWOut[2], kBiasOn});
  const std::vector<std::string> names = parameter_names();
  std::vector<Scalar> p;
  for (std::size_t i = 0; i < values.size(); ++i) p.push_back(Scalar::leaf(values[i]).set_label(names[i]));
  return p;
}

// The same network with weight matrices: z_H = x W1 + b1, H = f(z_H), z_ON = H W2 + b2.
void tensor_trace(bool markdown, const TraceOptions& format) {
  const TensorOptions param = TensorOptions(DType::float64).requires_grad();
  const Tensor w1 = tensor({{kWIn[0][0], kWIn[0][1], kWIn[0][2]}, {kWIn[1][0], kWIn[1][1], kWIn[1][2]}}, param);
  const Tensor b1 = tensor({kBiasH[0], kBiasH[1], kBiasH[2]}, param);
  const Tensor w2 = tensor({{kWOut[0]}, {kWOut[1]}, {kWOut[2]}}, param);
  const Tensor b2 = tensor({kBiasOn}, param);
  const Tensor x = tensor({{kX[0], kX[1]}}, DType::float64);
  const Tensor h = sigmoid(matmul(x, w1) + b1);
  const Tensor on = sigmoid(matmul(h, w2) + b2);
  const Tensor c = sum(0.5 * pow(on - kY, 2.0));
  const TensorTrace t = trace_backward(c, {{"W1", w1}, {"b1", b1}, {"W2", w2}, {"b2", b2}, {"H", h}, {"ON", on}});
  std::cout << "\n" << (markdown ? t.to_markdown(format) : t.to_text(format));
}

// softplus(x) = ln(1 + e^x), whose derivative is sigmoid(x); the wrong backward forgets the
// denominator (e^x instead of e^x / (1 + e^x)).
void custom_op_check(bool markdown) {
  auto softplus = [](std::span<const double> x) { return std::log1p(std::exp(x[0])); };
  auto d_softplus = [](double grad, std::span<const double> x, double) {
    return std::vector<double>{grad / (1 + std::exp(-x[0]))};
  };
  auto wrong_d_softplus = [](double grad, std::span<const double> x, double) {
    return std::vector<double>{grad * std::exp(x[0])};
  };
  const char* fence = markdown ? "```\n" : "";
  std::cout << "\n" << fence << check_custom_op("softplus", softplus, d_softplus, {0.614}) << fence;
  std::cout << "\n" << fence << check_custom_op("softplus", softplus, wrong_d_softplus, {0.614}) << fence;
}

}  // namespace

int main(int argc, char** argv) {
  bool markdown = false, tensors = false, custom = false, input_gradients = false;
  TraceOptions format;
  std::string dot_path;
  constexpr const char* kUsage =
      "usage: lecture_trace [--markdown] [--fixed DECIMALS (0 to 30)] [--dot FILE] [--tensor] [--custom-op] "
      "[--input-gradients]\n";
  auto bad = [&](const std::string& what) {
    std::cerr << "lecture_trace: " << what << "\n" << kUsage;
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (examples::is_help(arg)) {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--markdown") {
      markdown = true;
    } else if (arg == "--fixed") {
      if (!has_value) return bad("--fixed needs a number of decimals");
      const std::string decimals = argv[++i];
      int n = -1;
      const auto [end, error] = std::from_chars(decimals.data(), decimals.data() + decimals.size(), n);
      if (error != std::errc() || end != decimals.data() + decimals.size() || n < 0 || n > 30)
        return bad("--fixed " + decimals + ": the number of decimals must be a whole number from 0 to 30");
      format = {n, true};
    } else if (arg == "--dot") {
      if (!has_value || argv[i + 1][0] == '\0') return bad("--dot needs a file name");
      dot_path = argv[++i];
    } else if (arg == "--tensor") {
      tensors = true;
    } else if (arg == "--custom-op") {
      custom = true;
    } else if (arg == "--input-gradients") {
      input_gradients = true;
    } else {
      return bad("unknown argument '" + arg + "'");
    }
  }

  const std::vector<Scalar> p = parameters();
  const Scalar c = cost(p, input_gradients);
  c.backward();
  const ChainRuleTrace t = trace(c);
  std::cout << (markdown ? t.to_markdown(format) : t.to_text(format));

  if (!dot_path.empty()) {
    try {
      write_dot(dot_path, c, {.title = "The lecture's network on observation 1: C = 1/2 (ON - y)^2",
                              .digits = format.digits,
                              .fixed = format.fixed});
    } catch (const std::runtime_error& e) {
      std::cerr << "lecture_trace: " << e.what() << "\n";
      return 2;
    }
    std::cout << "\nwrote " << dot_path << " (render: dot -Tsvg " << dot_path << " -o picture.svg)\n";
  }

  // The same gradients, checked against central differences of C.
  const GradcheckReport report = gradcheck([&](const std::vector<Scalar>& q) { return cost(q, input_gradients); }, p);
  std::cout << "\n" << (markdown ? "```\n" : "") << report << (markdown ? "```\n" : "");
  if (tensors) tensor_trace(markdown, format);
  if (custom) custom_op_check(markdown);
  return report.passed ? 0 : 1;
}
