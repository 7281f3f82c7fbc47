#pragma once
// What the training-step workloads (mlp_b*, cnn_b32) share: the agreement numbers a network
// reports, the timed body, and (for the systems that are chainrule or LibTorch) the copy of the
// workload's initial float32 weights into the network and of its parameters back out.
//
// A workload's Net provides:
//   double step()                                     one training step; returns its forward's loss
//   std::vector<std::vector<float>> params() const    the parameters, weights and biases alternating
#include <string>
#include <vector>

#include "bench/harness.h"

namespace chainrule::bench {

// The loss of each of `steps` steps, then each parameter's sum (in double), named "sum W1",
// "sum b1", "sum W2", ... (weights and biases alternate, as in the workloads' Problem::params).
template <class Net>
Outcome training_outcome(Net& net, int steps) {
  Outcome out;
  for (int s = 1; s <= steps; ++s) out.emplace_back("loss[step " + std::to_string(s) + "]", net.step());
  const auto p = net.params();
  for (size_t k = 0; k < p.size(); ++k) {
    double total = 0.0;
    for (float v : p[k]) total += v;
    out.emplace_back(std::string("sum ") + (k % 2 == 0 ? "W" : "b") + std::to_string(k / 2 + 1), total);
  }
  return out;
}

// One step, never inlined into the timing loop (as the other workloads' timed bodies).
template <class Net>
[[gnu::noinline]] double timed_step(Net& net) {
  return net.step();
}

// The timed body: one step per iteration; items processed are samples (`batch` per step).
template <class Net>
void run_training(benchmark::State& state, Net& net, int batch) {
  for (auto _ : state) {
    double loss = timed_step(net);
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace chainrule::bench
