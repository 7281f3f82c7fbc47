#pragma once
// micrograd's neural network library (its nn.py: Neuron, Layer, MLP) and the training of its demo
// (demo.ipynb: two moons, a 2-16-16-1 MLP, a max-margin loss with L2 regularisation, 100 steps of
// gradient descent), written with chainrule's Scalars. Every number in the network is a Scalar and
// every operation a node of the graph, as in micrograd; the differences are C++'s (a Generator in
// place of Python's random module) and one of chainrule's: a neuron's weighted sum w . x + b is one
// `dot` node instead of 2n additions and products (the same value and gradients, a shorter graph).
// Used by examples/moons.cpp and tests/examples/training_test.cpp.
#include <cstddef>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

namespace micrograd {

using chainrule::Generator;
using chainrule::Scalar;

// One neuron: relu(w . x + b), or w . x + b without the nonlinearity (the output layer).
// micrograd's initialisation: w_i ~ U(-1, 1), b = 0.
class Neuron {
 public:
  Neuron(std::size_t inputs, bool nonlinear, Generator& gen) : nonlinear_(nonlinear) {
    for (std::size_t i = 0; i < inputs; ++i) w_.push_back(Scalar::leaf(gen.uniform(-1, 1)));
    b_ = Scalar::leaf(0.0);
  }
  Scalar operator()(const std::vector<Scalar>& x) const {
    const Scalar act = chainrule::dot(w_, x, b_);
    return nonlinear_ ? relu(act) : act;
  }
  void collect(std::vector<Scalar*>& out) {
    for (Scalar& w : w_) out.push_back(&w);
    out.push_back(&b_);
  }

 private:
  std::vector<Scalar> w_;
  Scalar b_;
  bool nonlinear_;
};

class Layer {
 public:
  Layer(std::size_t inputs, std::size_t outputs, bool nonlinear, Generator& gen) {
    for (std::size_t j = 0; j < outputs; ++j) neurons_.emplace_back(inputs, nonlinear, gen);
  }
  std::vector<Scalar> operator()(const std::vector<Scalar>& x) const {
    std::vector<Scalar> out;
    out.reserve(neurons_.size());
    for (const Neuron& n : neurons_) out.push_back(n(x));
    return out;
  }
  void collect(std::vector<Scalar*>& out) {
    for (Neuron& n : neurons_) n.collect(out);
  }

 private:
  std::vector<Neuron> neurons_;
};

// MLP(2, {16, 16, 1}): ReLU layers, the last one linear (micrograd's).
class MLP {
 public:
  MLP(std::size_t inputs, const std::vector<std::size_t>& sizes, Generator& gen) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      layers_.emplace_back(i == 0 ? inputs : sizes[i - 1], sizes[i], i + 1 != sizes.size(), gen);
    }
  }
  std::vector<Scalar> operator()(std::vector<Scalar> x) const {
    for (const Layer& layer : layers_) x = layer(x);
    return x;
  }
  // Pointers to every weight and bias (the MLP must outlive them and not move).
  std::vector<Scalar*> parameters() {
    std::vector<Scalar*> out;
    for (Layer& layer : layers_) layer.collect(out);
    return out;
  }

 private:
  std::vector<Layer> layers_;
};

// The demo's loss over points x (rows of 2) with labels y in {-1, +1}: the mean of the max-margin
// (hinge) losses relu(1 - y_i * score_i), plus alpha * the sum of the squared parameters; and the
// accuracy, the fraction of points whose score has the label's sign.
struct Loss {
  Scalar total;
  double accuracy;
};

inline Loss loss(MLP& model, const std::vector<std::vector<double>>& x, const std::vector<double>& y,
                 double alpha = 1e-4) {
  Scalar data_loss = 0.0, reg_loss = 0.0;
  std::size_t right = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const Scalar score = model({Scalar(x[i][0]), Scalar(x[i][1])})[0];
    data_loss += relu(1.0 - y[i] * score);
    right += (y[i] > 0) == (score.value() > 0);
  }
  for (Scalar* p : model.parameters()) reg_loss += *p * *p;
  return {data_loss / static_cast<double>(x.size()) + alpha * reg_loss,
          static_cast<double>(right) / static_cast<double>(x.size())};
}

// One step of the demo's loop: zero the gradients, backward, descend with the rate
// 1 - 0.9 k / 100 at step k.
inline void sgd_step(MLP& model, const Scalar& total, int k) {
  for (Scalar* p : model.parameters()) p->zero_grad();
  total.backward();
  const double rate = 1.0 - 0.9 * k / 100;
  for (Scalar* p : model.parameters()) p->set_value(p->value() - rate * p->grad());
}

}  // namespace micrograd
