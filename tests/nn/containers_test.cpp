// The containers a custom model is built with: ModuleList, ModuleDict (torch's names for their
// children's parameters), Identity and Unflatten; Sequential is a ModuleList with a forward.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/sequential.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

// A residual stack over a ModuleList and two heads in a ModuleDict, as a user writes them.
class Residual : public nn::Module {
 public:
  Residual() : Module("Residual") {
    blocks_ = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int i = 0; i < 3; ++i)
      blocks_->push_back(std::make_shared<nn::Dense>(nn::DenseOptions(4, 4).dtype(DType::float64).seed(10 + i)));
    heads_ = register_module("heads", std::make_shared<nn::ModuleDict>());
    heads_->insert("value", std::make_shared<nn::Dense>(nn::DenseOptions(4, 1).dtype(DType::float64).seed(20)));
    heads_->insert("policy", std::make_shared<nn::Dense>(nn::DenseOptions(4, 2).dtype(DType::float64).seed(21)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (const std::shared_ptr<nn::Module>& block : *blocks_) h = h + tanh(block->forward(h));
    return sum((*heads_)["value"]->forward(h)) + sum(heads_->at<nn::Dense>("policy")->forward(h));
  }
  std::shared_ptr<nn::ModuleList> blocks_;
  std::shared_ptr<nn::ModuleDict> heads_;
};

}  // namespace

TEST_CASE("nn: ModuleList and ModuleDict name their children's parameters as torch", "[containers]") {
  Residual model;
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                                          "blocks.2.weight", "blocks.2.bias", "heads.value.weight", "heads.value.bias",
                                          "heads.policy.weight", "heads.policy.bias"});
  CHECK(model.to_string() ==
        "Residual(\n"
        "  (blocks): ModuleList(\n"
        "    (0): Dense(in_features=4, out_features=4, bias=true, dtype=float64)\n"
        "    (1): Dense(in_features=4, out_features=4, bias=true, dtype=float64)\n"
        "    (2): Dense(in_features=4, out_features=4, bias=true, dtype=float64)\n"
        "  )\n"
        "  (heads): ModuleDict(\n"
        "    (value): Dense(in_features=4, out_features=1, bias=true, dtype=float64)\n"
        "    (policy): Dense(in_features=4, out_features=2, bias=true, dtype=float64)\n"
        "  )\n"
        ")");
  // Every parameter trains: one SGD step changes each, as it changes its gradient's sign.
  const Tensor x = full({2, 4}, 0.3, DType::float64);
  std::vector<std::vector<double>> before;
  for (const Tensor& p : model.parameters()) before.push_back(p.to_vector());
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  model.forward(x).backward();
  opt.step();
  size_t k = 0;
  for (const Tensor& p : model.parameters()) {
    CAPTURE(k);
    CHECK(p.grad().defined());
    CHECK(p.to_vector() != before[k++]);
  }
}

TEST_CASE("nn: ModuleList indexing, iteration and errors", "[containers]") {
  nn::ModuleList list(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)), nn::ReLU());
  list.push_back("head", std::make_shared<nn::Dense>(nn::DenseOptions(3, 1)));
  CHECK(list.size() == 3);
  size_t seen = 0;
  for (const auto& m : list) CHECK(m == list[seen++]);
  CHECK(seen == 3);
  CHECK(list.at<nn::Dense>(2)->weight().shape() == Shape{1, 3});
  CHECK_THAT(message_of<std::out_of_range>([&] { list[3]; }),
             Contains("ModuleList: index 3 is out of range for 3 modules"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { list.at<nn::Dense>(1); }),
             Contains("ModuleList::at: module 1 ('1') is a ReLU, not the requested type"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { list.push_back("head", std::make_shared<nn::ReLU>()); }),
             Contains("head"));
  // No forward: a container says so.
  CHECK_THROWS_AS(list.forward(zeros({1, 2})), std::logic_error);
  // Sequential is a ModuleList with a forward, and keeps its own name in messages.
  nn::Sequential seq{nn::ReLU()};
  nn::ModuleList& as_list = seq;
  CHECK(as_list.size() == 1);
  CHECK_THAT(message_of<std::out_of_range>([&] { seq[1]; }), Contains("Sequential: index 1"));
  CHECK(seq.forward(from_vector({-1.0, 2.0}, {2})).to_vector() == std::vector<double>{0.0, 2.0});
}

TEST_CASE("nn: ModuleDict lookups and errors", "[containers]") {
  nn::ModuleDict dict({{"encoder", std::make_shared<nn::Dense>(nn::DenseOptions(2, 2))},
                       {"act", std::make_shared<nn::Tanh>()}});
  CHECK(dict.size() == 2);
  CHECK(dict.keys() == std::vector<std::string>{"encoder", "act"});
  CHECK(dict.contains("act"));
  CHECK_FALSE(dict.contains("decoder"));
  CHECK(dict["act"]->name() == "Tanh");
  CHECK_THAT(message_of<std::out_of_range>([&] { dict["decoder"]; }),
             Contains("ModuleDict: no module named 'decoder' (the keys are [encoder, act])"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { dict.at<nn::Dense>("act"); }),
             Contains("ModuleDict::at: module 'act' is a Tanh"));
  CHECK_THROWS_AS(dict.insert("encoder", std::make_shared<nn::ReLU>()), std::invalid_argument);
  CHECK_THROWS_AS(dict.insert("a.b", std::make_shared<nn::ReLU>()), std::invalid_argument);
  CHECK(dict.size() == 2);  // nothing was added by the refused inserts
}

TEST_CASE("nn: Identity and Unflatten", "[containers]") {
  const Tensor x = from_vector(std::vector<double>(24, 0.5), {2, 12}, TensorOptions(DType::float64).requires_grad(true));
  CHECK(nn::Identity().forward(x).impl() == x.impl());
  nn::Unflatten unflatten(1, {3, 2, 2});
  CHECK(unflatten.to_string() == "Unflatten(dim=1, unflattened_size=[3, 2, 2])");
  const Tensor y = unflatten.forward(x);
  CHECK(y.shape() == Shape{2, 3, 2, 2});
  CHECK(nn::Unflatten(-1, {-1, 4}).forward(x).shape() == Shape{2, 3, 4});
  CHECK(nn::Unflatten(0, {1, 2}).forward(x).shape() == Shape{1, 2, 12});
  sum(y * 2.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>(24, 2.0));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {5, 2}).forward(x); }),
             Contains("dim 1 of the input [2, 12] has size 12, which [5, 2] does not unflatten"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {-1, 5}).forward(x); }),
             Contains("[-1, 5] does not unflatten"));
  CHECK_THROWS_AS(nn::Unflatten(2, {3, 4}).forward(x), std::out_of_range);
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {-1, -1}); }), Contains("at most one size may be -1"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {0, 4}); }), Contains("sizes must be >= 1 or -1"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {}); }), Contains("empty"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::Unflatten(1, {INT64_MAX / 2, 4}).forward(x); }),
             Contains("overflow"));
}
