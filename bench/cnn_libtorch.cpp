// cnn_b32/libtorch: LibTorch 1.13's C++ frontend as its users write it: torch::nn::Sequential of
// Conv2d, ReLU, MaxPool2d, Flatten and Linear; cross_entropy (mean); torch::optim::SGD; one step
// is zero_grad, forward, loss, backward, step. The initial weights are copied in under NoGradGuard.
#include <torch/torch.h>

#include "bench/cnn.h"
#include "bench/training_libtorch.h"

namespace chainrule::bench::cnn {
namespace {

class TorchCnn {
 public:
  explicit TorchCnn(const Problem& p)
      : net_(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, kC1, 3).padding(1)), torch::nn::ReLU(),
             torch::nn::MaxPool2d(2), torch::nn::Conv2d(torch::nn::Conv2dOptions(kC1, kC2, 3).padding(1)),
             torch::nn::ReLU(), torch::nn::MaxPool2d(2), torch::nn::Flatten(), torch::nn::Linear(kFlat, kOut)),
        x_(torch::from_blob(const_cast<float*>(p.x.data()), {kBatch, 1, kSide, kSide}, torch::kFloat32).clone()),
        labels_(torch::from_blob(const_cast<int64_t*>(p.labels.data()), {kBatch}, torch::kInt64).clone()),
        opt_(load_params(net_->parameters(), p.params), torch::optim::SGDOptions(kLearningRate)) {}

  double step() {
    opt_.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net_->forward(x_), labels_);
    loss.backward();
    opt_.step();
    return loss.item<double>();
  }

  std::vector<std::vector<float>> params() const { return float_params(net_->parameters()); }

 private:
  torch::nn::Sequential net_;
  torch::Tensor x_, labels_;
  torch::optim::SGD opt_;
};

[[maybe_unused]] const bool registered = add<TorchCnn>("libtorch");

}  // namespace
}  // namespace chainrule::bench::cnn
