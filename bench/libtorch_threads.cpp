// LibTorch's intra-op thread pool, set to the bench's thread count like every other system's.
#include <torch/torch.h>

#include <string>

#include "bench/harness.h"

namespace chainrule::bench {
namespace {

[[maybe_unused]] const bool registered = add_thread_setter("libtorch", [](int threads) {
  torch::set_num_threads(threads);
  return "torch::set_num_threads(" + std::to_string(threads) + "), get_num_threads() = " +
         std::to_string(torch::get_num_threads());
});

}  // namespace
}  // namespace chainrule::bench
