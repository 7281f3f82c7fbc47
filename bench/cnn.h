#pragma once
// Workload `cnn_b32`: one training step of a small convolutional network on 28x28 images (the
// shape of an MNIST classifier, the first model after an MLP), float32, batch 32.
//
//   h1     = maxpool2(relu(conv3x3(x, W1, b1, padding 1)))    x [32, 1, 28, 28] -> [32, 16, 14, 14]
//   h2     = maxpool2(relu(conv3x3(h1, W2, b2, padding 1)))   -> [32, 32, 7, 7]
//   logits = flatten(h2) W3^T + b3                            W3 [10, 1568]
//   loss   = cross-entropy (mean over the batch); every parameter p -= 0.01 * dloss/dp (SGD)
//
// No hand-written floor (a convolution's backward by hand is not a floor anyone writes): the
// reference is chainrule_tensor, and LibTorch must agree with it (losses of kCheckSteps steps and
// the parameters' sums after them, to kRelTol) before either is timed. Data and initial weights
// (U(+-1/sqrt(fan_in)), as torch's Conv2d and Linear) are generated here and loaded into both.
#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "bench/training.h"

namespace chainrule::bench::cnn {

inline constexpr int kBatch = 32;
inline constexpr int kSide = 28;
inline constexpr int kC1 = 16, kC2 = 32, kOut = 10;
inline constexpr int kFlat = kC2 * 7 * 7;
inline constexpr double kLearningRate = 0.01;
inline constexpr int kCheckSteps = 4;
inline constexpr double kRelTol = 1e-4;
inline constexpr const char* kWorkload = "cnn_b32";

struct Problem {
  std::vector<float> x;               // [kBatch, 1, kSide, kSide]
  std::vector<int64_t> labels;        // [kBatch]
  std::vector<std::vector<float>> params;  // W1 [16,1,3,3], b1, W2 [32,16,3,3], b2, W3 [10,1568], b3
};
const Problem& problem();

// Net: explicit Net(const Problem&), and bench/training.h's step() and params().
template <class Net>
bool add(std::string system) {
  auto check = [] {
    Net net(problem());
    return training_outcome(net, kCheckSteps);
  };
  auto run = [](benchmark::State& state) {
    Net net(problem());
    run_training(state, net, kBatch);
  };
  return add_system({kWorkload, std::move(system), check, run});
}

}  // namespace chainrule::bench::cnn
