// mlp_b*/chainrule_tensor: the network as a chainrule user writes it: nn::Sequential of nn::Dense and
// nn::ReLU, nn::CrossEntropyLoss on class indices, optim::SGD; one step is zero_grad, forward, loss,
// backward, step. The initial weights are written into the layers' parameters through mutable_data.
//
// Also registers memory/chainrule_tensor/mlp_b128_rss: the resident memory over 10,000 such steps.
#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>

#include "autograd/tensor.h"
#include "bench/mlp.h"
#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/sequential.h"
#include "optim/sgd.h"

namespace chainrule::bench::mlp {
namespace {

std::shared_ptr<nn::Sequential> make_net() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(kIn, kHidden)),
                                          std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Dense>(nn::DenseOptions(kHidden, kHidden)),
                                          std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Dense>(nn::DenseOptions(kHidden, kOut)));
}

class ChainruleMlp {
 public:
  explicit ChainruleMlp(const Problem& p)
      : net_(make_net()),
        x_(from_vector(std::vector<double>(p.x.begin(), p.x.end()), {p.batch, kIn})),
        labels_(p.labels),
        opt_(load(net_->parameters(), p.params), optim::SGDOptions(kLearningRate)) {}

  double step() {
    opt_.zero_grad();
    const Tensor loss = loss_fn_(net_->forward(x_), labels_);
    loss.backward();
    opt_.step();
    return loss.item();
  }

  std::vector<std::vector<float>> params() const {
    std::vector<std::vector<float>> out;
    for (const Tensor& t : net_->parameters()) out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
    return out;
  }

 private:
  static std::vector<Tensor> load(std::vector<Tensor> params, const std::vector<std::vector<float>>& values) {
    for (size_t k = 0; k < params.size(); ++k) {
      if (static_cast<size_t>(params[k].numel()) != values.at(k).size())
        throw std::logic_error("mlp: parameter " + std::to_string(k) + " has an unexpected size");
      std::copy(values[k].begin(), values[k].end(), params[k].mutable_data<float>());
    }
    return params;
  }

  std::shared_ptr<nn::Sequential> net_;
  Tensor x_;
  std::vector<int64_t> labels_;
  nn::CrossEntropyLoss loss_fn_;
  optim::SGD opt_;
};

[[maybe_unused]] const bool registered = add_all<ChainruleMlp>("chainrule_tensor");
[[maybe_unused]] const bool rss_registered = add_rss<ChainruleMlp>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::mlp
