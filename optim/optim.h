#pragma once
// chainrule::optim in one include: the optimizer base, SGD, Adam, AdamW and the schedulers.
//
//   #include "optim/optim.h"
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.5).momentum(0.9));
//   optim::StepLR schedule(opt, 100, 0.5);
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"
