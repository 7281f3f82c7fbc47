#pragma once
// Schedules made of schedules (torch.optim.lr_scheduler.SequentialLR and ChainedScheduler), over
// the formula schedulers of optim/lr_scheduler.h, all built on the one optimizer and held by
// shared pointers (the combination keeps them alive).
//
//   SequentialLR(schedulers, milestones)  scheduler k runs from epoch milestones[k - 1] on,
//                                         started afresh there (its epoch 0, from the base rates)
//   ChainedScheduler(schedulers)          every step() steps each of them, in order: their
//                                         chainable factors multiply
//
// The usual warm-up then cosine decay:
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.1));
//   auto warmup = std::make_shared<optim::LinearLR>(opt, 0.01, 1.0, 5);  // 0.001 up to 0.1 over 5 epochs
//   auto decay = std::make_shared<optim::CosineAnnealingLR>(opt, 95);    // then 0.1 down to 0
//   optim::SequentialLR schedule(opt, {warmup, decay}, {5});
//   for (int epoch = 0; epoch < 100; ++epoch) { train_one_epoch(); schedule.step(); }
//
// As torch's SequentialLR, building one sets the rates back to the optimizer's initial rates and
// applies the first scheduler's epoch 0 (the others' constructors had each applied theirs).
// Checkpoints: state_dict() holds "last_epoch" and each scheduler's entries under "<k>." (k its
// position); load them with optim::load as any scheduler's.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "optim/lr_scheduler.h"

namespace chainrule::optim {

// std::invalid_argument, naming the combination: no scheduler, a null one, one built on another
// optimizer, milestones not one fewer than the schedulers, or not increasing and >= 1.
class SequentialLR : public Scheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  // Ends an epoch: last_epoch() += 1; at a milestone the next scheduler restarts, else the current
  // one steps.
  void step();
  int64_t last_epoch() const { return last_epoch_; }
  double get_last_lr() const { return optimizer_.get_lr(); }
  std::vector<double> get_last_lrs() const { return optimizer_.get_lrs(); }

  std::string name() const override { return "SequentialLR"; }
  std::map<std::string, double> state_dict() const override;
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  Optimizer& optimizer_;
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
  int64_t last_epoch_ = 0;
};

class ChainedScheduler : public Scheduler {
 public:
  // std::invalid_argument for no scheduler, a null one, or schedulers of different optimizers.
  explicit ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers);
  // Steps each scheduler in order.
  void step();
  double get_last_lr() const { return schedulers_.front()->get_last_lr(); }
  std::vector<double> get_last_lrs() const { return schedulers_.front()->get_last_lrs(); }

  std::string name() const override { return "ChainedScheduler"; }
  std::map<std::string, double> state_dict() const override;
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
};

}  // namespace chainrule::optim
