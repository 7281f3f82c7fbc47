#pragma once
// The lecture's 2-3-1 sigmoid network built neuron by neuron from Scalars, exactly as the slides
// draw it: z_H = X1 * w_IN1->H + X2 * w_IN2->H + b_H, H = f(z_H), z_ON = sum_H H * w_H->ON + b_ON,
// Output = f(z_ON), with f the sigmoid. Used by examples/lecture.cpp.
#include <array>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/scalar.h"

namespace lecture {

using chainrule::Scalar;

// The slides' initial weights ("Step 2: Initialize the neural network").
inline constexpr double kW1[2][3] = {{-0.2, 0.4, -1.0}, {-0.4, -0.7, -0.8}};  // [IN][H]
inline constexpr double kB1[3] = {0.1, -0.2, 0.4};
inline constexpr double kW2[3] = {-0.6, -0.6, -0.3};  // [H] -> ON
inline constexpr double kB2 = -0.6;

struct ScalarNet {
  Scalar w1[2][3];  // w1[i][h]: IN(i+1) -> H(h+1)
  Scalar b1[3];
  Scalar w2[3];     // H(h+1) -> ON
  Scalar b2;

  ScalarNet() {
    for (int i = 0; i < 2; ++i)
      for (int h = 0; h < 3; ++h)
        w1[i][h] = Scalar::leaf(kW1[i][h]).set_label(fmt::format("IN{}->H{}", i + 1, h + 1));
    for (int h = 0; h < 3; ++h) {
      b1[h] = Scalar::leaf(kB1[h]).set_label(fmt::format("bias H{}", h + 1));
      w2[h] = Scalar::leaf(kW2[h]).set_label(fmt::format("H{}->ON", h + 1));
    }
    b2 = Scalar::leaf(kB2).set_label("bias ON");
  }

  // Every parameter, in the slides' table order: IN1->HL, IN2->HL, HL->ON, then the biases.
  std::vector<Scalar*> parameters() {
    std::vector<Scalar*> out;
    for (auto& row : w1)
      for (Scalar& w : row) out.push_back(&w);
    for (Scalar& w : w2) out.push_back(&w);
    for (Scalar& b : b1) out.push_back(&b);
    out.push_back(&b2);
    return out;
  }

  // Gradient descent on the accumulated gradients (step 6), then clears them.
  void update(double learning_rate) {
    for (Scalar* p : parameters()) {
      p->set_value(p->value() - learning_rate * p->grad());
      p->zero_grad();
    }
  }
};

// One observation's forward pass, with every intermediate kept for the tables.
struct Observation {
  std::array<Scalar, 3> z, h;  // input sums and values of the hidden nodes
  Scalar z_on, out;            // input sum and value of the output node
  Scalar half_cost;            // 1/2 (Output - Y)^2, the slides' C_i
};

inline Observation forward(const ScalarNet& net, double x1, double x2, double y) {
  Observation o;
  for (int h = 0; h < 3; ++h) {
    o.z[h] = x1 * net.w1[0][h] + x2 * net.w1[1][h] + net.b1[h];
    o.h[h] = sigmoid(o.z[h]);
    o.z[h].set_label(fmt::format("z_H{}", h + 1));
    o.h[h].set_label(fmt::format("H{}", h + 1));
  }
  o.z_on = o.h[0] * net.w2[0] + o.h[1] * net.w2[1] + o.h[2] * net.w2[2] + net.b2;
  o.out = sigmoid(o.z_on);
  // The 1/2 makes dC/dOutput = Output - Y, the slides' "Err" at ON.
  o.half_cost = 0.5 * pow(o.out - y, 2.0);
  o.z_on.set_label("z_ON");
  o.out.set_label("Output");
  o.half_cost.set_label("C");
  return o;
}

}  // namespace lecture
