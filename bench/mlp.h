#pragma once
// Workloads `mlp_b128`, `mlp_b8`, `mlp_b1`: one training step of a 784-256-256-10 ReLU network.
//
//   h1     = relu(x W1^T + b1)       x [B, 784], W1 [256, 784], b1 [256]
//   h2     = relu(h1 W2^T + b2)      W2 [256, 256], b2 [256]
//   logits = h2 W3^T + b3            W3 [10, 256], b3 [10]
//   loss   = 1/B * sum_n (-log softmax(logits_n)[label_n])      (cross-entropy, mean over the batch)
//   every parameter p -= 0.01 * dloss/dp                          (plain SGD)
//
// float32 throughout. One timed iteration is one step: forward, backward and update, on the same
// batch every time (data fixed once: x uniform in [0, 1), labels uniform in 0..9, both from a seeded
// Generator). Every system starts from the same weights, generated here (U(+-1/sqrt(fan_in)), as
// torch.nn.Linear) and loaded into each system. The agreement check runs kCheckSteps steps and
// compares each step's loss and, after them, the sum of every parameter (in double), with the
// hand-written floor, to kRelTol: float32 products summed in different orders differ by about 1e-6
// relative.
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/harness.h"
#include "bench/memory.h"
#include "bench/training.h"

namespace chainrule::bench::mlp {

inline constexpr int kIn = 784;
inline constexpr int kHidden = 256;
inline constexpr int kOut = 10;
inline constexpr double kLearningRate = 0.01;
inline constexpr int kCheckSteps = 4;
inline constexpr double kRelTol = 1e-4;

// The six parameters in the order W1, b1, W2, b2, W3, b3 (weights row-major [out, in]).
struct Layer {
  int in, out;
};
inline constexpr Layer kLayers[3] = {{kIn, kHidden}, {kHidden, kHidden}, {kHidden, kOut}};

// One batch and the initial weights, identical for every system.
struct Problem {
  int batch;
  std::vector<float> x;               // [batch, kIn]
  std::vector<int64_t> labels;        // [batch], each in [0, kOut)
  std::vector<std::vector<float>> params;  // W1, b1, W2, b2, W3, b3
};

// The problem of batch size `batch` (built once per batch size, then shared).
const Problem& problem(int batch);

// A system's network: explicit Net(const Problem&), which loads problem.params as its initial
// weights, and bench/training.h's step() and params() (in Problem's order).

inline std::string workload_name(int batch) { return "mlp_b" + std::to_string(batch); }

// `bound`: Net runs only part of the step (see System::bound); its check only has to run.
template <class Net>
bool add(std::string system, int batch, bool bound = false) {
  auto check = [batch] {
    Net net(problem(batch));
    return training_outcome(net, kCheckSteps);
  };
  auto run = [batch](benchmark::State& state) {
    Net net(problem(batch));
    run_training(state, net, batch);
  };
  System s{workload_name(batch), std::move(system), check, run};
  s.bound = bound;
  return add_system(std::move(s));
}

// Registers memory/<system>/mlp_b128_rss: kRssSteps steps of Net on the batch-128 problem.
template <class Net>
bool add_rss(std::string system) {
  return memory::add_rss_over_steps(std::move(system), [] {
    auto net = std::make_shared<Net>(problem(128));
    return std::function<double()>([net] { return net->step(); });
  });
}

// Registers Net for the three batch sizes.
template <class Net>
bool add_all(const std::string& system, bool bound = false) {
  return add<Net>(system, 128, bound) && add<Net>(system, 8, bound) && add<Net>(system, 1, bound);
}

}  // namespace chainrule::bench::mlp
