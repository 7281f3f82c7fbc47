#pragma once
// Loss functions, composed from autograd ops (no derivative is defined here but the fused node of
// cross entropy over class indices, nn/loss_cross_entropy.cpp). Each comes as an
// options struct, a class with forward(input, target) (as torch.nn.MSELoss, ...) and a free
// function (as torch.nn.functional.mse_loss). Caller mistakes throw: shapes that differ
// (std::invalid_argument, both shapes named; no silent broadcasting of [N, 1] against [N]), dtypes
// that differ, class indices out of range (std::out_of_range).
//
// The reduction over the per-element (or per-sample) losses l (nn/loss_reduction.h):
//   None: l itself        Mean: sum(l) / count        Sum: sum(l)
//
// One include for all of them, by idea:
//   nn/loss_reduction.h       Reduction (none, mean, sum)
//   nn/loss_regression.h      MSELoss, L1Loss, SmoothL1Loss, HuberLoss
//   nn/loss_binary.h          BCELoss, BCEWithLogitsLoss
//   nn/loss_classification.h  CrossEntropyLoss, NLLLoss
//   nn/loss_kl_div.h          KLDivLoss (and its reduction batchmean)
#include "nn/loss_binary.h"
#include "nn/loss_classification.h"
#include "nn/loss_kl_div.h"
#include "nn/loss_reduction.h"
#include "nn/loss_regression.h"
