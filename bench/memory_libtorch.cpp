// memory/libtorch/tiny_op: LibTorch's bytes per recorded op on one-element float64 tensors, the same
// chain as memory/chainrule_tensor/tiny_op (y <- y * w, w requires grad), for comparison.
#include <torch/torch.h>

#include "bench/memory.h"

namespace chainrule::bench::memory {
namespace {

std::shared_ptr<void> record_torch_chain(int ops, benchmark::UserCounters&) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto y = std::make_shared<torch::Tensor>(torch::full({1}, 0.5, f64));
  const torch::Tensor w = torch::full({1}, 0.999, f64).set_requires_grad(true);
  for (int k = 0; k < ops; ++k) *y = *y * w;
  return y;
}

[[maybe_unused]] const bool registered = add_bytes_per_op("libtorch", "tiny_op", 100000, record_torch_chain);

}  // namespace
}  // namespace chainrule::bench::memory
