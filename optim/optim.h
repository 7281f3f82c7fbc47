#pragma once
// chainrule::optim in one include: the optimizer base, SGD, Adam, AdamW, RMSprop, Adagrad, saving and resuming them,
// the schedulers (StepLR, ReduceLROnPlateau and the formula schedules of
// lr_scheduler.h), the training loop (fit, gradient norms and clipping), progress lines and loss plots.
//
//   #include "optim/optim.h"
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.5).momentum(0.9));
//   optim::StepLR schedule(opt, 100, 0.5);
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/cyclic_lr.h"
#include "optim/loss_plot.h"
#include "optim/lr_scheduler.h"
#include "optim/lr_scheduler_sequence.h"
#include "optim/one_cycle_lr.h"
#include "optim/optimizer.h"
#include "optim/progress.h"
#include "optim/rmsprop.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"
#include "optim/trainer.h"
