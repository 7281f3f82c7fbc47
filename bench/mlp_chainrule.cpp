// mlp_b*/chainrule_tensor: the network as a chainrule user writes it: nn::Sequential of nn::Dense and
// nn::ReLU, nn::CrossEntropyLoss on class indices, optim::SGD; one step is forward, loss and
// opt.backward_and_step(loss), the fused form a user picks when nothing reads the gradients between
// backward and step (each Dense weight's gradient product is added into the weight by one gemm, as
// the handwritten floor does; see optim/optimizer.h).
// mlp_b*/chainrule_tensor_unfused: the same network stepped as zero_grad, forward, loss, backward(),
// step(): the form for code that reads or clips .grad, and what LibTorch's step does.
// The initial weights are written into the layers' parameters through mutable_data.
//
// Also registers memory/chainrule_tensor/mlp_b128_rss: the resident memory over 10,000 fused steps.
#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>

#include "autograd/tensor.h"
#include "bench/mlp.h"
#include "bench/training_chainrule.h"
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

template <bool kFused>
class ChainruleMlp {
 public:
  explicit ChainruleMlp(const Problem& p)
      : net_(make_net()),
        x_(from_vector(std::vector<double>(p.x.begin(), p.x.end()), {p.batch, kIn})),
        labels_(p.labels),
        opt_(load_params(net_->parameters(), p.params, "mlp"), optim::SGDOptions(kLearningRate)) {}

  double step() {
    if constexpr (kFused) {
      const Tensor loss = loss_fn_(net_->forward(x_), labels_);
      opt_.backward_and_step(loss);
      return loss.item();
    } else {
      opt_.zero_grad();
      const Tensor loss = loss_fn_(net_->forward(x_), labels_);
      loss.backward();
      opt_.step();
      return loss.item();
    }
  }

  std::vector<std::vector<float>> params() const { return float_params(net_->parameters()); }

 private:
  std::shared_ptr<nn::Sequential> net_;
  Tensor x_;
  std::vector<int64_t> labels_;
  nn::CrossEntropyLoss loss_fn_;
  optim::SGD opt_;
};

[[maybe_unused]] const bool registered = add_all<ChainruleMlp<true>>("chainrule_tensor");
[[maybe_unused]] const bool unfused_registered = add_all<ChainruleMlp<false>>("chainrule_tensor_unfused");
[[maybe_unused]] const bool rss_registered = add_rss<ChainruleMlp<true>>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::mlp
