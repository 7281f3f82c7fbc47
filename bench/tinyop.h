#pragma once
// Workload `tinyop`: the per-op overhead of recording and differentiating one-element tensors.
//
//   y = y0;  repeat kLinks times: y = sigmoid(y * w + b);  then backward from y
//
// w and b are one-element leaves (they receive dy/dw and dy/db summed over the 1,000 links), y0 a
// one-element constant. One timed iteration is the whole chain: 3 recorded ops per link (mul, add,
// sigmoid), kOps = 3,000 ops recorded and then differentiated, plus resetting the two gradients.
// Reported per op: the counter `per_op` is the iteration time / kOps; items are ops.
#include <string>
#include <utility>

#include "bench/harness.h"

namespace chainrule::bench::tinyop {

inline constexpr int kLinks = 1000;
inline constexpr int kOpsPerLink = 3;  // mul, add, sigmoid
inline constexpr int kOps = kLinks * kOpsPerLink;
inline constexpr double kY0 = 0.3;
inline constexpr double kW = 0.9;
inline constexpr double kB = -0.2;
inline constexpr double kRelTol = 1e-12;

// A system's chain. Chain must provide:
//   Chain()                  w = kW, b = kB (leaves), y0 = kY0
//   double run()             clears w's and b's gradients, records the chain, runs backward,
//                            returns the final y
//   double grad_w(), grad_b()  the gradients left by the last run()
// One timed chain, kept out of line so that a profile can name it, e.g.
//   valgrind --tool=callgrind --toggle-collect='*tinyop::timed_run<*TensorChain*' bench/bench ...
template <class Chain>
[[gnu::noinline]] double timed_run(Chain& chain) {
  return chain.run();
}

template <class Chain>
bool add(std::string system) {
  auto check = [] {
    Chain chain;
    Outcome out;
    // Twice, so that clearing the gradients between iterations is checked too.
    for (int r = 1; r <= 2; ++r) {
      const std::string run = " (run " + std::to_string(r) + ")";
      out.emplace_back("y" + run, chain.run());
      out.emplace_back("dy/dw" + run, chain.grad_w());
      out.emplace_back("dy/db" + run, chain.grad_b());
    }
    return out;
  };
  auto run = [](benchmark::State& state) {
    Chain chain;
    for (auto _ : state) {
      double y = timed_run(chain);
      benchmark::DoNotOptimize(y);
    }
    state.SetItemsProcessed(state.iterations() * kOps);
    state.counters["per_op"] = benchmark::Counter(
        static_cast<double>(kOps), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  };
  return add_system({"tinyop", std::move(system), check, run});
}

}  // namespace chainrule::bench::tinyop
