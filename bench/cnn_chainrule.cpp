// cnn_b32/chainrule_tensor: the network as a chainrule user writes it (nn::Sequential of Conv2d,
// ReLU, MaxPool2d, Flatten and Dense; nn::CrossEntropyLoss; optim::SGD; zero_grad, forward,
// backward, step), and the workload's problem. The reference system of the workload.
#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

#include "bench/cnn.h"
#include "bench/training_chainrule.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/sequential.h"
#include "optim/sgd.h"

namespace chainrule::bench::cnn {

const Problem& problem() {
  static const Problem p = [] {
    Problem q;
    for (double v : uniform_numbers(static_cast<size_t>(kBatch) * kSide * kSide, 0.0, 1.0, 4000))
      q.x.push_back(static_cast<float>(v));
    for (double v : uniform_numbers(kBatch, 0.0, kOut, 4001)) q.labels.push_back(std::min<int64_t>(kOut - 1, static_cast<int64_t>(v)));
    struct Param { size_t count; int fan_in; };
    const Param params[6] = {{kC1 * 9, 9}, {kC1, 9}, {kC2 * kC1 * 9, kC1 * 9}, {kC2, kC1 * 9}, {kOut * kFlat, kFlat}, {kOut, kFlat}};
    uint64_t seed = 4100;
    for (const Param& pr : params) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(pr.fan_in));
      std::vector<float> values;
      for (double v : uniform_numbers(pr.count, -bound, bound, seed++)) values.push_back(static_cast<float>(v));
      q.params.push_back(std::move(values));
    }
    return q;
  }();
  return p;
}

namespace {

class ChainruleCnn {
 public:
  explicit ChainruleCnn(const Problem& p)
      : net_(std::make_shared<nn::Sequential>(
            std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, kC1, 3).padding(1)), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Conv2d>(nn::Conv2dOptions(kC1, kC2, 3).padding(1)),
            std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
            std::make_shared<nn::Dense>(nn::DenseOptions(kFlat, kOut)))),
        x_(from_vector(std::vector<double>(p.x.begin(), p.x.end()), {kBatch, 1, kSide, kSide})),
        labels_(p.labels),
        opt_(load_params(net_->parameters(), p.params, "cnn"), optim::SGDOptions(kLearningRate)) {}

  double step() {
    opt_.zero_grad();
    const Tensor loss = loss_fn_(net_->forward(x_), labels_);
    loss.backward();
    opt_.step();
    return loss.item();
  }

  std::vector<std::vector<float>> params() const { return float_params(net_->parameters()); }

 private:
  std::shared_ptr<nn::Sequential> net_;
  Tensor x_;
  std::vector<int64_t> labels_;
  nn::CrossEntropyLoss loss_fn_;
  optim::SGD opt_;
};

[[maybe_unused]] const bool workload_registered = add_workload(
    {kWorkload, "chainrule_tensor", kRelTol,
     "one training step of a 2-conv CNN (16 and 32 channels, 3x3, max pooling) on 32 28x28 images, float32"});
[[maybe_unused]] const bool registered = add<ChainruleCnn>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::cnn
