// nn::Module: registration, dotted names, children, modes, zero_grad, to(dtype), printing; and the
// finite-difference helper the other nn tests use (check_gradients, declared where it is used).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/sequential.h"

using namespace chainrule;
using Catch::Contains;

namespace chainrule::nn::testing {

// Central differences over every element of every tensor in `params` (float64 leaves that require
// grad): CHECKs param.grad() against (L(p + eps) - L(p - eps)) / (2 eps), eps = 1e-6, within
// 1e-6 absolute + 1e-5 relative. `loss` builds the scalar loss from the current values.
void check_gradients(const std::function<Tensor()>& loss, const std::vector<Tensor>& params,
                     const std::string& what) {
  for (Tensor p : params) {
    REQUIRE(p.dtype() == DType::float64);
    REQUIRE(p.requires_grad());
    p.zero_grad();
  }
  Tensor l = loss();
  REQUIRE(l.numel() == 1);
  l.backward();
  const double eps = 1e-6;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor p = params[k];
    const Tensor g = p.grad();
    const std::vector<double> analytic = g.defined() ? g.to_vector() : std::vector<double>(p.numel(), 0.0);
    for (int64_t i = 0; i < p.numel(); ++i) {
      const double original = p.data<double>()[i];
      double up = 0, down = 0;
      {
        NoGradGuard no_grad;
        p.mutable_data<double>()[i] = original + eps;
        up = loss().item();
        p.mutable_data<double>()[i] = original - eps;
        down = loss().item();
        p.mutable_data<double>()[i] = original;
      }
      const double numeric = (up - down) / (2 * eps);
      const double a = analytic[static_cast<size_t>(i)];
      INFO(what << ": tensor " << k << " element " << i << ": analytic " << a << ", numeric " << numeric);
      CHECK(std::abs(a - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
    }
  }
}

}  // namespace chainrule::nn::testing

namespace {

// A model as a user would write it: named children and a parameter of its own.
class TwoLayer : public nn::Module {
 public:
  TwoLayer() : Module("TwoLayer") {
    hidden_ = register_module("hidden", std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).seed(1)));
    out_ = register_module("out", std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).bias(false).seed(2)));
    scale_ = register_parameter("scale", ones({1}));
  }
  Tensor forward(const Tensor& x) override { return out_->forward(sigmoid(hidden_->forward(x))) * scale_; }
  const Tensor& scale() const { return scale_; }

 private:
  std::shared_ptr<nn::Dense> hidden_, out_;
  Tensor scale_;
};

std::vector<std::string> names(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("nn: named_parameters of a Sequential are 0.weight, 0.bias, 2.weight, ...") {
  nn::Sequential net(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)), nn::Sigmoid(),
                     std::make_shared<nn::Dense>(nn::DenseOptions(3, 1)), nn::Sigmoid());
  CHECK(names(net) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(net.parameters().size() == 4);
  CHECK(net.parameters()[0].shape() == Shape{3, 2});
  CHECK(net.children().size() == 4);
  CHECK(net.named_parameters(false).empty());  // Sequential has no parameters of its own
}

TEST_CASE("nn: named_parameters of a custom module use its child names, own parameters first") {
  TwoLayer m;
  CHECK(names(m) == std::vector<std::string>{"scale", "hidden.weight", "hidden.bias", "out.weight"});
  nn::Sequential outer;
  outer.push_back("block", std::make_shared<TwoLayer>());
  outer.push_back(std::make_shared<nn::Tanh>());
  CHECK(names(outer) ==
        std::vector<std::string>{"block.scale", "block.hidden.weight", "block.hidden.bias", "block.out.weight"});
  CHECK(outer.named_children()[1].first == "1");  // unnamed children are named by position
}

TEST_CASE("nn: a layer shared by two parents is listed once") {
  auto shared = std::make_shared<nn::Dense>(nn::DenseOptions(2, 2));
  nn::Sequential net(shared, shared);
  CHECK(names(net) == std::vector<std::string>{"0.weight", "0.bias"});
}

TEST_CASE("nn: registration rejects a cycle (a module inside its own subtree)") {
  // Accepted before, and then every walk of the tree (parameters, printing) overflowed the stack.
  auto a = std::make_shared<nn::Sequential>();
  auto b = std::make_shared<nn::Sequential>();
  a->push_back(std::make_shared<nn::Dense>(nn::DenseOptions(2, 2)));
  a->push_back(b);
  CHECK_THROWS_WITH(b->push_back(a), Contains("'0' (Sequential) contains this module already"));
  auto c = std::make_shared<nn::Sequential>();
  b->push_back(c);
  CHECK_THROWS_AS(c->push_back(a), std::invalid_argument);  // two levels down
  CHECK(a->parameters().size() == 2);
  c->push_back(std::make_shared<nn::ReLU>());  // a plain child still goes in
  CHECK(c->size() == 1);
}

TEST_CASE("nn: registration rejects duplicate and dotted names") {
  nn::Sequential net;
  net.push_back("a", std::make_shared<nn::ReLU>());
  CHECK_THROWS_AS(net.push_back("a", std::make_shared<nn::ReLU>()), std::invalid_argument);
  CHECK_THROWS_WITH(net.push_back("a", std::make_shared<nn::ReLU>()), Contains("'a' already exists"));
  CHECK_THROWS_WITH(net.push_back("x.y", std::make_shared<nn::ReLU>()), Contains("invalid name 'x.y'"));
  CHECK_THROWS_WITH(net.push_back("", std::make_shared<nn::ReLU>()), Contains("invalid name ''"));
  CHECK_THROWS_WITH(net.push_back("b", std::shared_ptr<nn::Module>()), Contains("is null"));
}

TEST_CASE("nn: forward of a module without one throws, naming the module") {
  nn::Module m("Container");
  CHECK_THROWS_AS(m.forward(zeros({1})), std::logic_error);
  CHECK_THROWS_WITH(m.forward(zeros({1})), Contains("Container::forward"));
}

TEST_CASE("nn: train() and eval() reach every descendant") {
  auto inner = std::make_shared<nn::Sequential>(nn::Sigmoid());
  nn::Sequential outer(inner, nn::ReLU());
  CHECK(outer.is_training());
  outer.eval();
  CHECK_FALSE(outer.is_training());
  CHECK_FALSE(inner->is_training());
  CHECK_FALSE((*inner)[0]->is_training());
  outer.train();
  CHECK((*inner)[0]->is_training());
}

TEST_CASE("nn: zero_grad drops every parameter's gradient") {
  TwoLayer m;
  sum(m.forward(ones({4, 2}))).backward();
  for (const Tensor& p : m.parameters()) CHECK(p.grad().defined());
  m.zero_grad();
  for (const Tensor& p : m.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn: to(float64) converts parameters in place, handles held by the module stay valid") {
  TwoLayer m;
  const std::vector<double> before = m.parameters()[1].to_vector();
  const Tensor scale_handle = m.scale();
  m.to(DType::float64);
  for (const Tensor& p : m.parameters()) {
    CHECK(p.dtype() == DType::float64);
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(scale_handle.dtype() == DType::float64);  // the same tensor, not a copy
  const std::vector<double> after = m.parameters()[1].to_vector();
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i] == before[i]);  // float -> double is exact
  Tensor y = m.forward(ones({4, 2}, DType::float64));
  CHECK(y.dtype() == DType::float64);
  sum(y).backward();
  CHECK(m.scale().grad().dtype() == DType::float64);
  m.to(DType::float32);
  CHECK(m.scale().dtype() == DType::float32);
  CHECK_FALSE(m.scale().grad().defined());  // gradients are dropped by a conversion
}

TEST_CASE("nn: a graph recorded before to() throws before it writes any gradient or parameter") {
  // x needs no gradient, so linear saved x but not the weight: the old graph still runs, and
  // computes the Dense parameters' gradients in float32 for leaves that are now float64.
  nn::Dense d(nn::DenseOptions(2, 3));
  const Tensor x = ones({4, 2});
  const Tensor other = tensor({1.0, 2.0}, TensorOptions().requires_grad(true));  // float32, not converted
  const Tensor old_loss = sum(d.forward(x)) + sum(other * other);
  d.to(DType::float64);
  const std::vector<double> weight = d.weight().to_vector();
  try {
    old_loss.backward({.retain_graph = true});
    FAIL("backward did not throw");
  } catch (const std::logic_error& e) {
    CHECK_THAT(e.what(), Contains("a leaf of shape [3, 2] is now float64 but this graph computed its gradient as "
                                  "float32") &&
                             Contains("Module::to"));
  }
  CHECK_FALSE(other.grad().defined());  // reached too, but not written
  for (const Tensor& p : d.parameters()) CHECK_FALSE(p.grad().defined());
  // The fused step checks its parameters the same way, before writing any.
  std::vector<ParamUpdate> updates;
  for (const Tensor& p : d.parameters()) updates.push_back({p, -0.1});
  try {
    backward_and_update(old_loss, updates);
    FAIL("backward_and_update did not throw");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Contains("is float64 [3, 2] but its gradient is float32 [3, 2]"));
  }
  CHECK(d.weight().to_vector() == weight);
  CHECK_FALSE(other.grad().defined());
}

TEST_CASE("nn: a graph that saved a parameter before to() refuses backward") {
  // The graph keeps the parameter's float32 bytes (an op saves bytes, not the tensor); to() moves
  // their version on as well as giving the parameter new ones.
  nn::Dense d(nn::DenseOptions(2, 3));
  const Tensor x = tensor({{1.0, 2.0}}, TensorOptions().requires_grad(true));
  const Tensor old_loss = sum(d.forward(x));  // linear saved the weight for x's gradient
  d.to(DType::float64);
  CHECK_THROWS_WITH(old_loss.backward(), Contains("linear") && Contains("modified in place"));
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("nn: a module prints one line per layer, children indented") {
  nn::Sequential net(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)), nn::Sigmoid(),
                     std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).bias(false).dtype(DType::float64)),
                     nn::Softmax(1));
  const std::string expected =
      "Sequential(\n"
      "  (0): Dense(in_features=2, out_features=3, bias=true)\n"
      "  (1): Sigmoid()\n"
      "  (2): Dense(in_features=3, out_features=1, bias=false, dtype=float64)\n"
      "  (3): Softmax(dim=1)\n"
      ")";
  CHECK(net.to_string() == expected);
  std::ostringstream os;
  os << net;
  CHECK(os.str() == expected);

  nn::Sequential outer;
  outer.push_back("features", std::make_shared<nn::Sequential>(nn::ReLU()));
  outer.push_back("head", std::make_shared<nn::LogSoftmax>(-1));
  CHECK(outer.to_string() ==
        "Sequential(\n"
        "  (features): Sequential(\n"
        "    (0): ReLU()\n"
        "  )\n"
        "  (head): LogSoftmax(dim=-1)\n"
        ")");
}

TEST_CASE("nn: Sequential indexing and typed access") {
  nn::Sequential net(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)), nn::Tanh());
  CHECK(net.size() == 2);
  CHECK(net.at<nn::Dense>(0)->weight().shape() == Shape{3, 2});
  CHECK(net[1]->name() == "Tanh");
  CHECK_THROWS_AS(net[2], std::out_of_range);
  CHECK_THROWS_WITH(net[2], Contains("index 2 is out of range for 2 modules"));
  CHECK_THROWS_WITH(net.at<nn::Dense>(1), Contains("module 1 ('1') is a Tanh"));
  nn::Sequential empty;
  const Tensor x = ones({2});
  CHECK(empty.forward(x).to_vector() == x.to_vector());
}

TEST_CASE("nn: the gradient-check helper agrees with a custom module (float64)") {
  TwoLayer m;
  m.to(DType::float64);
  const Tensor x = tensor({{0.3, -1.2}, {2.0, 0.5}, {-0.7, 0.1}}, DType::float64);
  nn::testing::check_gradients([&] { return sum(m.forward(x) * m.forward(x)); }, m.parameters(), "TwoLayer");
}

// A LibTorch habit: serving one trained model from several threads at once. Under NoGradGuard a
// forward records nothing and changes nothing shared (no reference count, no stamp), so this is
// safe; CI runs the suite under ThreadSanitizer (build-tsan/ in .ci/run), which flags any write the
// two threads would share.
TEST_CASE("module: one model evaluated from two threads at once under NoGradGuard", "[nn][module][threads]") {
  // Every module and loss in nn/: two heads on one trunk.
  auto trunk = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Dense>(nn::DenseOptions(6, 16)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dense>(nn::DenseOptions(16, 8)), std::make_shared<nn::Tanh>());
  auto classes = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(8, 3)),
                                                  std::make_shared<nn::Softmax>(1));
  auto log_classes = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(8, 3)),
                                                      std::make_shared<nn::LogSoftmax>(1));
  auto binary = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(8, 1)),
                                                 std::make_shared<nn::Sigmoid>());
  for (const auto& m : {trunk, classes, log_classes, binary}) m->to(DType::float64);
  const nn::MSELoss mse;
  const nn::BCELoss bce;
  const nn::BCEWithLogitsLoss bce_logits;
  const nn::CrossEntropyLoss cross_entropy;
  const std::vector<int64_t> labels = {0, 2, 1, 2};
  auto evaluate = [&](double shift) {
    NoGradGuard no_grad;
    double total = 0.0;
    for (int i = 0; i < 100; ++i) {
      const Tensor x = reshape(arange(0.0, 24.0, 1.0, DType::float64), {4, 6}) * 0.05 + shift + 0.001 * i;
      const Tensor h = trunk->forward(x);
      const Tensor p = binary->forward(h);
      const Tensor y = full({4, 1}, 1.0, DType::float64);
      total += mse(classes->forward(h), full({4, 3}, 1.0 / 3.0, DType::float64)).item() +
               cross_entropy(log_classes->forward(h), labels).item() + bce(p, y).item() +
               bce_logits(p, y).item();
    }
    return total;
  };
  const double serial_a = evaluate(0.0), serial_b = evaluate(-1.0);
  double a = 0.0, b = 0.0;
  std::thread ta([&] { a = evaluate(0.0); }), tb([&] { b = evaluate(-1.0); });
  ta.join();
  tb.join();
  CHECK(a == serial_a);
  CHECK(b == serial_b);
  CHECK(serial_a != serial_b);
  for (const auto& m : {trunk, classes, log_classes, binary})
    for (const Tensor& p : m->parameters()) CHECK_FALSE(p.grad().defined());
}

// to(its own dtype), expand(x, x.shape()) and sum_to(x, x.shape()) returned x's own handle: copying
// it wrote the shared parameter's count from both threads (TSan; the count ended at 13,184 for 1,
// or the pool's memory corrupted). Not recording they return a copy now; recording, x itself.
TEST_CASE("module: no-op casts and expands of a shared parameter under NoGradGuard write nothing shared",
          "[nn][module][threads]") {
  const Tensor w = ones({2, 2}, TensorOptions(DType::float64).requires_grad(true));
  auto use = [&](double& out) {
    NoGradGuard no_grad;
    for (int i = 0; i < 2000; ++i)
      out += sum(expand(w, w.shape()) + w.to(DType::float64) + sum_to(w, w.shape())).item();
  };
  {
    NoGradGuard no_grad;
    CHECK(expand(w, w.shape()).impl() != w.impl());
    CHECK(w.to(DType::float64).impl() != w.impl());
    CHECK(sum_to(w, w.shape()).impl() != w.impl());
  }
  CHECK(expand(w, w.shape()).impl() == w.impl());  // recording: w itself, as PyTorch's
  double a = 0.0, b = 0.0;
  std::thread ta([&] { use(a); }), tb([&] { use(b); });
  ta.join();
  tb.join();
  CHECK(a == 2000 * 12.0);
  CHECK(b == a);
  CHECK(w.impl()->refs == 1);
}

namespace {

// A layer with state that is not trained: a fixed mask on its inputs (a persistent buffer) and a
// running count of the rows it has seen (a non-persistent one).
class Masked : public nn::Module {
 public:
  Masked() : Module("Masked") {
    dense_ = register_module("dense", std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).seed(3)));
    mask_ = register_buffer("mask", from_vector({1.0f, 0.0f, 1.0f}, {3}));
    seen_ = register_buffer("seen", zeros({1}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override {
    {
      NoGradGuard no_grad;
      seen_ += static_cast<double>(x.shape()[0]);
    }
    return dense_->forward(x * mask_);
  }
  const Tensor& mask() const { return mask_; }
  const Tensor& seen() const { return seen_; }

 private:
  std::shared_ptr<nn::Dense> dense_;
  Tensor mask_, seen_;
};

std::vector<std::string> names_of(const std::vector<nn::NamedTensor>& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("nn: buffers are listed apart from parameters, with dotted names, and are not trained") {
  nn::Sequential net;
  net.push_back("block", std::make_shared<Masked>());
  CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"block.dense.weight", "block.dense.bias"});
  CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"block.mask", "block.seen"});
  CHECK(names_of(net.named_buffers(/*recurse=*/false)).empty());
  CHECK(names_of(net.named_state()) ==
        std::vector<std::string>{"block.dense.weight", "block.dense.bias", "block.mask"});  // "seen" is not persistent
  CHECK(net.buffers().size() == 2);
  CHECK(net.parameters().size() == 2);

  // A training step changes the weights and leaves the mask as it was; the masked input's weight
  // gets no gradient.
  auto& masked = dynamic_cast<Masked&>(*net.named_children()[0].second);
  const Tensor x = from_vector({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}, {2, 3});
  sum(net.forward(x)).backward();
  CHECK_FALSE(masked.mask().requires_grad());
  CHECK_FALSE(masked.mask().grad().defined());
  CHECK(net.parameters()[0].grad().to_vector()[1] == 0.0);
  CHECK(masked.mask().to_vector() == std::vector<double>{1, 0, 1});
  CHECK(masked.seen().item() == 2.0);
}

TEST_CASE("nn: register_buffer checks the name and the tensor as register_parameter does") {
  struct Bad : nn::Module {
    Bad() : Module("Bad") { register_parameter("w", zeros({2})); }
    void add(const std::string& name, const Tensor& t) { register_buffer(name, t); }
  } m;
  CHECK_THROWS_WITH(m.add("w", zeros({1})), Contains("Bad::register_buffer: a parameter named 'w' already exists"));
  m.add("b", zeros({1}));
  CHECK_THROWS_WITH(m.add("b", zeros({1})), Contains("a buffer named 'b' already exists"));
  CHECK_THROWS_WITH(m.add("x.y", zeros({1})), Contains("invalid name 'x.y'"));
  CHECK_THROWS_WITH(m.add("u", Tensor()), Contains("Bad::register_buffer: tensor 'u' is undefined"));
  const Tensor leaf = ones({2}, TensorOptions().requires_grad(true));
  CHECK_THROWS_WITH(m.add("v", leaf * 2.0), Contains("tensor 'v' is the result of 'mul', not a leaf"));
  CHECK(m.buffers().size() == 1);
}

TEST_CASE("nn: a persistent buffer marked optional in files is listed by optional_state, with its dotted name") {
  struct Counted : nn::Module {
    Counted() : Module("Counted") {
      register_buffer("count", zeros({}));
      register_buffer("scratch", zeros({1}), /*persistent=*/false);
    }
    void mark(const std::string& name) { mark_optional_in_files(name); }
  };
  nn::Sequential net;
  auto counted = std::make_shared<Counted>();
  net.push_back("c", counted);
  CHECK(net.optional_state().empty());
  CHECK_THROWS_WITH(counted->mark("scratch"),
                    Contains("Counted::mark_optional_in_files: 'scratch' is not a persistent buffer of this module"));
  CHECK_THROWS_WITH(counted->mark("nothing"), Contains("'nothing' is not a persistent buffer"));
  counted->mark("count");
  CHECK(net.optional_state() == std::vector<std::string>{"c.count"});
  CHECK(names_of(net.named_state()) == std::vector<std::string>{"c.count"});  // still saved
}

TEST_CASE("nn: to(dtype) converts buffers in place too") {
  Masked m;
  const Tensor mask = m.mask();  // a handle held outside the module
  m.to(DType::float64);
  CHECK(mask.dtype() == DType::float64);
  CHECK(m.seen().dtype() == DType::float64);
  CHECK(mask.to_vector() == std::vector<double>{1, 0, 1});
  const Tensor y = m.forward(from_vector({1.0, 2.0, 3.0}, {1, 3}, TensorOptions(DType::float64)));
  CHECK(y.dtype() == DType::float64);
}
