#pragma once
// chainrule::nn in one include: modules, layers (dense, convolution and pooling, embedding,
// normalisation, dropout, recurrent: RNN, LSTM, GRU and their cells, attention and the
// Transformer's layers and model), activations, initialisers and losses, saving and loading, data (CSV, standardisation, mini-batches) and the safetensors
// format.
//
//   #include "nn/nn.h"
//   using namespace chainrule;
//   auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)),
//                                               std::make_shared<nn::Sigmoid>());
//   nn::MSELoss loss(nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true));
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/attention_decoder.h"
#include "nn/attention_encoder.h"
#include "nn/batches.h"
#include "nn/conv.h"
#include "nn/csv.h"
#include "nn/data.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/normalization.h"
#include "nn/pad.h"
#include "nn/pool.h"
#include "nn/recurrent.h"
#include "nn/safetensors.h"
#include "nn/sequential.h"
#include "nn/serialize.h"
#include "nn/standardizer.h"
#include "nn/transformer.h"
