// mlp_b*/libtorch: LibTorch 1.13's C++ frontend as its users write it: torch::nn::Sequential of
// Linear and ReLU, torch::nn::functional::cross_entropy (mean), torch::optim::SGD; one step is
// zero_grad, forward, loss, backward, step. The initial weights are copied in under NoGradGuard.
#include <torch/torch.h>

#include "bench/mlp.h"
#include "bench/training_libtorch.h"

namespace chainrule::bench::mlp {
namespace {

class TorchMlp {
 public:
  explicit TorchMlp(const Problem& p)
      : net_(torch::nn::Linear(kIn, kHidden), torch::nn::ReLU(), torch::nn::Linear(kHidden, kHidden),
             torch::nn::ReLU(), torch::nn::Linear(kHidden, kOut)),
        x_(torch::from_blob(const_cast<float*>(p.x.data()), {p.batch, kIn}, torch::kFloat32).clone()),
        labels_(torch::from_blob(const_cast<int64_t*>(p.labels.data()), {p.batch}, torch::kInt64).clone()),
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

[[maybe_unused]] const bool registered = add_all<TorchMlp>("libtorch");

}  // namespace
}  // namespace chainrule::bench::mlp
