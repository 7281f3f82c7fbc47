// optim::SGD: options validation, PyTorch's update formulas on hand-computed steps (plain, momentum
// with dampening and weight decay, Nesterov), skipped parameters, and the lecture's single
// observation update through nn::Dense + nn::Sigmoid + MSELoss.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <vector>

#include "nn/nn.h"
#include "optim/sgd.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param(const NestedList& v) { return tensor(v, TensorOptions(DType::float64).requires_grad(true)); }

// Gives p the gradient c + p (from L = sum(c * p) + 1/2 sum(p^2)), as a training step would.
void backward_step(Tensor& p, const std::vector<double>& c) {
  Tensor ct = from_vector(c, p.shape(), DType::float64);
  (sum(ct * p) + sum(p * p) * 0.5).backward();
}

// PyTorch's SGD for one parameter, on doubles (torch.optim.SGD's documented algorithm).
struct ReferenceSGD {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  std::vector<double> buf;
  void step(std::vector<double>& p, std::vector<double> g) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (weight_decay != 0) g[i] += weight_decay * p[i];
      if (momentum != 0) {
        if (buf.size() < p.size()) buf.push_back(g[i]);
        else buf[i] = momentum * buf[i] + (1 - dampening) * g[i];
        g[i] = nesterov ? g[i] + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * g[i];
    }
  }
};

void run_against_reference(const optim::SGDOptions& options) {
  Tensor p = param({1.0, -2.0, 0.5});
  std::vector<double> ref_p = p.to_vector();
  ReferenceSGD ref{options.lr(), options.momentum(), options.dampening(), options.weight_decay(), options.nesterov(), {}};
  optim::SGD opt({p}, options);
  const std::vector<std::vector<double>> cs = {{0.5, 3.0, -1.0}, {-0.25, 1.0, 2.0}, {1.5, -0.5, 0.0}, {0.1, 0.2, 0.3}};
  for (const auto& c : cs) {
    opt.zero_grad();
    backward_step(p, c);
    std::vector<double> g(c.size());
    for (size_t i = 0; i < c.size(); ++i) g[i] = c[i] + ref_p[i];
    ref.step(ref_p, g);
    opt.step();
    for (size_t i = 0; i < ref_p.size(); ++i) CHECK(p.to_vector()[i] == Approx(ref_p[i]).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("optim: SGD options are validated with the bad value in the message") {
  Tensor p = param({1.0});
  CHECK_THROWS_AS(optim::SGD({p}, optim::SGDOptions(-0.1)), std::invalid_argument);
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(-0.1)), Contains("learning rate must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).momentum(1.0)), Contains("momentum must be in [0, 1), got 1"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).momentum(-0.5)), Contains("got -0.5"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).dampening(1.5)), Contains("dampening must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).weight_decay(-1)), Contains("weight_decay must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)), Contains("nesterov needs momentum > 0"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
                    Contains("dampening=0.1"));
  CHECK_THROWS_WITH(optim::SGD(std::vector<Tensor>{}, optim::SGDOptions(0.1)), Contains("empty parameter list"));
  CHECK_THROWS_WITH(optim::SGD({p * 2.0}, optim::SGDOptions(0.1)), Contains("not a leaf"));
  CHECK_THROWS_WITH(optim::SGD({p, p}, optim::SGDOptions(0.1)), Contains("parameter 1 appears twice"));
  optim::SGD ok({p}, optim::SGDOptions(0.1));
  CHECK_THROWS_WITH(ok.set_lr(-1), Contains("got -1"));
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(INFINITY)), Contains("learning rate must be finite and >= 0, got inf"));
  CHECK_THROWS_WITH(ok.set_lr(INFINITY), Contains("got inf"));
  CHECK_THROWS_WITH(ok.momentum_buffer(5), Contains("SGD::momentum_buffer: parameter 5 of 1"));
  CHECK_THROWS_AS(ok.momentum_buffer(5), std::out_of_range);
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(0.1).weight_decay(INFINITY)), Contains("weight_decay must be finite"));
}

TEST_CASE("optim: plain SGD is p <- p - lr * g") {
  Tensor p = param({1.0, -2.0});
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  sum(p * tensor({0.5, 3.0}, DType::float64)).backward();  // g = (0.5, 3)
  opt.step();
  CHECK(p.at({0}) == Approx(0.95));
  CHECK(p.at({1}) == Approx(-2.3));
  CHECK(p.grad().at({1}) == 3.0);  // the gradient itself is left as it was
  CHECK(p.requires_grad());
  CHECK(p.is_leaf());
  opt.set_lr(0.5);
  CHECK(opt.get_lr() == 0.5);
  CHECK(opt.options().lr() == 0.5);
}

TEST_CASE("optim: SGD with momentum, dampening and weight decay follows PyTorch's formulas") {
  // First step: b = g (no dampening on it); later b = m b + (1 - d) g.
  run_against_reference(optim::SGDOptions(0.1).momentum(0.9));
  run_against_reference(optim::SGDOptions(0.05).momentum(0.5).dampening(0.3).weight_decay(0.01));
  run_against_reference(optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
  run_against_reference(optim::SGDOptions(0.2).weight_decay(0.5));
}

TEST_CASE("optim: SGD momentum by hand for two steps") {
  Tensor p = param({1.0});
  optim::SGD opt({p}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.5));
  sum(p * 2.0).backward();  // g = 2: b = 2, p = 1 - 0.2 = 0.8
  opt.step();
  CHECK(p.item() == Approx(0.8));
  CHECK(opt.momentum_buffer(0).item() == Approx(2.0));
  opt.zero_grad();
  sum(p * 2.0).backward();  // b = 0.9 * 2 + 0.5 * 2 = 2.8, p = 0.8 - 0.28 = 0.52
  opt.step();
  CHECK(p.item() == Approx(0.52));
}

TEST_CASE("optim: SGD skips a parameter without a gradient") {
  Tensor used = param({1.0});
  Tensor unused = param({5.0});
  optim::SGD opt({used, unused}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.1));
  sum(used * 3.0).backward();
  opt.step();
  CHECK(unused.item() == 5.0);  // weight decay is not applied either, as PyTorch
  CHECK_FALSE(opt.momentum_buffer(1).defined());
  CHECK(used.item() == Approx(1.0 - 0.1 * (3.0 + 0.1)));
}

TEST_CASE("optim: step() updates in place: a graph recorded before it refuses to run backward") {
  Tensor w = param({{1.0, 2.0}});
  Tensor y = sum(w * w);  // mul saves w for its backward
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  sum(w * w).backward();
  const uint32_t version = w.version();
  opt.step();
  CHECK(w.version() > version);
  CHECK_THROWS_AS(y.backward(), std::logic_error);
  CHECK_THROWS_WITH(y.backward(), Contains("modified in place"));
}

TEST_CASE("optim: the lecture's single-observation update (2-3-1 sigmoid net, float64, MSE sum + 1/2, lr 0.5)") {
  auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)), nn::Sigmoid(),
                                              std::make_shared<nn::Dense>(nn::DenseOptions(3, 1)), nn::Sigmoid());
  net->to(DType::float64);
  auto hidden = net->at<nn::Dense>(0), output = net->at<nn::Dense>(2);
  // The slides' weights: IN1 -> HL -0.2 0.4 -1.0 and IN2 -> HL -0.4 -0.7 -0.8 are W1's columns.
  nn::set_values(hidden->weight(), {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});
  nn::set_values(hidden->bias(), {0.1, -0.2, 0.4});
  nn::set_values(output->weight(), {{-0.6, -0.6, -0.3}});
  nn::set_values(output->bias(), {-0.6});

  const Tensor x = tensor({{-0.97, -0.80}}, DType::float64);
  const Tensor y = tensor({{0.0}}, DType::float64);
  // The loss whose gradient is the slides' backprop error: 1/2 (y_hat - y)^2, summed.
  nn::MSELoss cost(nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true));
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.5));

  const Tensor y_hat = net->forward(x);
  CHECK(std::round(y_hat.item() * 100) / 100 == Approx(0.18));  // the slides' Output
  CHECK(y_hat.item() == Approx(0.1751346852543504));
  opt.zero_grad();
  cost(y_hat, y).backward();
  // The slides' backprop error at ON is 0.025 = dC/db_ON.
  CHECK(output->bias().grad().item() == Approx(0.025300399245391913));
  opt.step();

  auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  CHECK(round3(output->weight().at({0, 0})) == Approx(-0.608));  // H1 -> ON
  CHECK(round3(output->bias().item()) == Approx(-0.613));         // bias ON
  CHECK(round3(hidden->weight().at({0, 0})) == Approx(-0.202));   // IN1 -> H1
  // And to full precision, from the formulas w -= lr * bpe_to * a_from, b -= lr * bpe:
  CHECK(output->weight().at({0, 0}) == Approx(-0.6082081163743288).epsilon(1e-12));
  CHECK(output->weight().at({0, 1}) == Approx(-0.6062365541988936).epsilon(1e-12));  // the slides' -0.606
  CHECK(output->bias().item() == Approx(-0.612650199622696).epsilon(1e-12));
  CHECK(hidden->weight().at({0, 0}) == Approx(-0.2016774740263951).epsilon(1e-12));
  CHECK(hidden->weight().at({2, 1}) == Approx(-0.8003163437638116).epsilon(1e-12));
  CHECK(hidden->bias().at({0}) == Approx(0.10172935466638669).epsilon(1e-12));
}
