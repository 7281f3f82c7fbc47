#pragma once
// Workload `lecture`: the lecture's 2-3-1 sigmoid network trained full batch.
//
//   h    = sigmoid(X W1^T + b1)        X [10, 2], W1 [3, 2], b1 [3]
//   yhat = sigmoid(h W2^T + b2)        W2 [1, 3], b2 [1]
//   cost = 1/2 * sum over the 10 observations of (yhat - y)^2     (the lecture's 1/2)
//   every parameter p -= 0.5 * dcost/dp                            (SGD on the summed gradient)
//
// One timed iteration is one epoch: forward, backward and update. Every system starts from the
// slides' weights and trains on the same ten observations; the agreement check runs kCheckEpochs
// epochs and compares each epoch's cost and the 13 final parameters with the hand-written floor.
#include <array>
#include <string>
#include <utility>

#include "bench/harness.h"

namespace chainrule::bench::lecture {

inline constexpr int kObservations = 10;
inline constexpr int kInputs = 2;
inline constexpr int kHidden = 3;
inline constexpr int kParams = kHidden * kInputs + kHidden + kHidden + 1;  // 13
inline constexpr double kLearningRate = 0.5;
inline constexpr int kCheckEpochs = 5;
inline constexpr double kRelTol = 1e-12;

// Z-scored inputs and targets. Rows 1-3 and 9-10 are the slides' (the slides show only those);
// rows 4-8 are made up, chosen so that each input column keeps mean 0 and standard deviation 1 (to
// two decimals) as z-scores do.
inline constexpr std::array<std::array<double, kInputs>, kObservations> kX = {{
    {-0.97, -0.80}, {-0.69, -0.97}, {-1.14, -1.09},                  // slides, rows 1-3
    {-0.59, 0.71}, {-0.09, -0.59}, {0.51, 1.91}, {1.01, -0.09}, {1.71, 1.11},  // made up, rows 4-8
    {-0.79, -0.52}, {1.04, 0.34},                                    // slides, rows 9-10
}};
inline constexpr std::array<double, kObservations> kY = {0, 0, 0, 0, 1, 0, 1, 0, 1, 0};

// The 13 parameters in one flat order shared by every system:
//   W1[j][i] (weight IN(i+1) -> H(j+1)), row-major, 6 numbers; b1[j], 3; W2[j] (H(j+1) -> ON), 3; b2.
struct Params {
  std::array<std::array<double, kInputs>, kHidden> w1;
  std::array<double, kHidden> b1;
  std::array<double, kHidden> w2;
  double b2;

  std::array<double, kParams> flat() const {
    return {w1[0][0], w1[0][1], w1[1][0], w1[1][1], w1[2][0], w1[2][1],
            b1[0],    b1[1],    b1[2],    w2[0],    w2[1],    w2[2],    b2};
  }
};

// The slides' initial weights: IN1->HL -0.2 0.4 -1.0; IN2->HL -0.4 -0.7 -0.8; HL->ON -0.6 -0.6
// -0.3; hidden biases 0.1 -0.2 0.4; output bias -0.6.
inline constexpr Params kInitial = {
    {{{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}}},
    {0.1, -0.2, 0.4},
    {-0.6, -0.6, -0.3},
    -0.6,
};

inline const char* param_name(int k) {
  static constexpr const char* names[kParams] = {
      "W1[0,0]", "W1[0,1]", "W1[1,0]", "W1[1,1]", "W1[2,0]", "W1[2,1]", "b1[0]",
      "b1[1]",   "b1[2]",   "W2[0]",   "W2[1]",   "W2[2]",   "b2"};
  return names[k];
}

// The cost of one epoch, written once for every scalar system (chainrule_scalar, bare_tape, sacado,
// adolc), so that all of them record the same ops in the same order: neuron by neuron, as the
// slides do. `w` holds the 13 parameters (the system's variables) in the flat order above; `sigmoid`
// is the system's own (one op where the system has it, 1 / (1 + exp(-z)) where it has not).
template <class T, class Params, class Sigmoid>
T epoch_cost(const Params& w, Sigmoid sigmoid) {
  T cost = 0.0;
  for (int n = 0; n < kObservations; ++n) {
    const double x0 = kX[n][0], x1 = kX[n][1];
    T z_out = w[12];
    for (int j = 0; j < kHidden; ++j) {
      const T h = sigmoid(x0 * w[j * kInputs] + x1 * w[j * kInputs + 1] + w[6 + j]);
      z_out = z_out + h * w[9 + j];
    }
    const T error = sigmoid(z_out) - kY[n];
    cost = cost + error * error;
  }
  cost = 0.5 * cost;
  return cost;
}

// A system's network. Net must provide:
//   Net()                                  starts from kInitial
//   double epoch()                         one epoch; returns the cost computed by its forward
//   std::array<double, kParams> params()   the current parameters in the flat order above
// One timed epoch, kept out of line so that a profile can name it, e.g.
//   valgrind --tool=callgrind --toggle-collect='*lecture::timed_epoch<*ScalarNet*' bench/bench ...
template <class Net>
[[gnu::noinline]] double timed_epoch(Net& net) {
  return net.epoch();
}

template <class Net>
bool add(std::string system) {
  auto check = [] {
    Net net;
    Outcome out;
    for (int e = 0; e < kCheckEpochs; ++e)
      out.emplace_back("cost[epoch " + std::to_string(e + 1) + "]", net.epoch());
    const auto p = net.params();
    for (int k = 0; k < kParams; ++k) out.emplace_back(param_name(k), p[k]);
    return out;
  };
  auto run = [](benchmark::State& state) {
    Net net;
    for (auto _ : state) {
      double cost = timed_epoch(net);
      benchmark::DoNotOptimize(cost);
    }
    state.SetItemsProcessed(state.iterations());  // epochs
  };
  return add_system({"lecture", std::move(system), check, run});
}

}  // namespace chainrule::bench::lecture
