#pragma once
// chainrule::nn in one include: modules, layers, activations, initialisers and losses.
//
//   #include "nn/nn.h"
//   using namespace chainrule;
//   auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)),
//                                               std::make_shared<nn::Sigmoid>());
//   nn::MSELoss loss(nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true));
#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/init.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/sequential.h"
