// Optimizer steps that throw (a parameter's state no longer matches it) change nothing: every
// check runs before the first write, so that fixing the cause and stepping again applies each
// update once.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "nn/nn.h"
#include "optim/adam.h"
#include "optim/rmsprop.h"
#include "optim/sgd.h"

using namespace chainrule;
using Catch::Contains;

namespace {
// Two Dense layers, one converted to float64 after the optimizer's first step: the next step finds
// the converted layer's state in the old dtype and throws. Parameters 0 and 1 (the first layer)
// come before the bad one.
struct HalfConverted {
  std::shared_ptr<nn::Dense> a = std::make_shared<nn::Dense>(nn::DenseOptions(2, 1).seed(1));
  std::shared_ptr<nn::Dense> b = std::make_shared<nn::Dense>(nn::DenseOptions(2, 1).seed(2));
  std::vector<Tensor> params() const {
    std::vector<Tensor> ps = a->parameters();
    for (const Tensor& p : b->parameters()) ps.push_back(p);
    return ps;
  }
  void backward() const {
    const Tensor x = ones({1, 2});
    const Tensor yb = b->forward(x.to(b->parameters()[0].dtype()));
    (sum(a->forward(x)) + sum(yb).to(DType::float32)).backward();
  }
};

}  // namespace

TEST_CASE("optim: an SGD step that throws changes no parameter and no momentum buffer") {
  HalfConverted net;
  optim::SGD opt(net.params(), optim::SGDOptions(0.1).momentum(0.9));
  net.backward();
  opt.step();
  net.b->to(DType::float64);
  opt.zero_grad();
  net.backward();
  const std::vector<double> weight = net.a->parameters()[0].to_vector(), buffer = opt.momentum_buffer(0).to_vector();
  CHECK_THROWS_WITH(opt.step(), Contains("SGD: parameter 2 is now float64 but its momentum buffer is float32"));
  CHECK(net.a->parameters()[0].to_vector() == weight);
  CHECK(opt.momentum_buffer(0).to_vector() == buffer);
}

TEST_CASE("optim: an Adam step that throws changes no parameter and no state") {
  HalfConverted net;
  optim::Adam opt(net.params(), optim::AdamOptions(0.1));
  net.backward();
  opt.step();
  net.b->to(DType::float64);
  opt.zero_grad();
  net.backward();
  const std::vector<double> weight = net.a->parameters()[0].to_vector(), m = opt.state(0).exp_avg.to_vector();
  CHECK_THROWS_WITH(opt.step(), Contains("Adam: parameter 2 is now float64 but its state is float32"));
  CHECK(net.a->parameters()[0].to_vector() == weight);
  CHECK(opt.state(0).exp_avg.to_vector() == m);
  CHECK(opt.state(0).step == 1);
}

TEST_CASE("optim: an RMSprop or Adagrad step that throws changes no parameter and no state") {
  for (int kind = 0; kind < 2; ++kind) {
    HalfConverted net;
    std::unique_ptr<optim::Optimizer> opt;
    if (kind == 0) opt = std::make_unique<optim::RMSprop>(net.params(), optim::RMSpropOptions(0.1).momentum(0.5));
    else opt = std::make_unique<optim::Adagrad>(net.params(), optim::AdagradOptions(0.1));
    net.backward();
    opt->step();
    net.b->to(DType::float64);
    opt->zero_grad();
    net.backward();
    const std::vector<double> weight = net.a->parameters()[0].to_vector();
    const auto state = opt->state_dict();
    CHECK_THROWS_WITH(opt->step(), Contains(kind == 0 ? "RMSprop: parameter 2 is now float64 but its state is float32"
                                                      : "Adagrad: parameter 2 is now float64 but its state is float32"));
    CHECK(net.a->parameters()[0].to_vector() == weight);
    const auto after = opt->state_dict();
    for (const auto& [name, t] : state) CHECK(after.at(name).to_vector() == t.to_vector());
  }
}
