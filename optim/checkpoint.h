#pragma once
// Saving and resuming an optimizer: its state_dict() (the current learning rate and every
// parameter's momentum or moments) in one safetensors file, so that training stopped after a
// nn::save of the model resumes exactly, as torch.save(optimizer.state_dict()) and
// optimizer.load_state_dict(torch.load(...)) do.
//
//   nn::save(*model, "model.safetensors");
//   optim::save(opt, "optimizer.safetensors");
//   ... later, a new process ...
//   auto model = make_model();
//   nn::load(*model, "model.safetensors");
//   optim::Adam opt(model->parameters(), optim::AdamOptions(1e-3));   // the same kind and options
//   optim::load(opt, "optimizer.safetensors");
//
// The file holds state_dict()'s tensors under their names ("lr", "0.exp_avg", ...) and, in its
// "__metadata__", "format": "chainrule" and "optimizer": the optimizer's name() ("SGD", "Adam",
// "AdamW"). Writes are atomic (nn::save_tensors); a load checks everything before it changes
// anything (Optimizer::load_state_dict). Python reads the tensors with safetensors' load_file;
// PyTorch's own optimizer checkpoints are pickles, which this is not.
//
// A scheduler (StepLR, ReduceLROnPlateau, or one of optim/lr_scheduler.h) may go in the same file: its state_dict() numbers as
// float64 tensors "scheduler.<name>" and its name in the metadata ("scheduler"), so that a
// resumed run decays when the first one would have:
//   optim::save(opt, "optimizer.safetensors", &decay);
//   optim::load(opt, "optimizer.safetensors", &decay);   // decay: a StepLR built as before
#include <filesystem>

#include "optim/optimizer.h"
#include "optim/scheduler.h"

namespace chainrule::optim {

// Writes optimizer.state_dict() (and the scheduler's, when given) to `path`, atomically.
// std::runtime_error naming the path for an I/O failure.
void save(const Optimizer& optimizer, const std::filesystem::path& path, const Scheduler* scheduler = nullptr);

// Reads `path` into `optimizer` (load_state_dict) and, when given, into `scheduler`. Throws
// std::runtime_error naming the path for an unreadable or malformed file, and
// std::invalid_argument naming the path for a file written by another kind of optimizer ("written
// by SGD, loading into Adam") or scheduler, a file without a scheduler when one is given, or a
// state that does not fit (load_state_dict's problems). Neither is changed after any error. A
// scheduler in the file is ignored when none is given.
void load(Optimizer& optimizer, const std::filesystem::path& path, Scheduler* scheduler = nullptr);

}  // namespace chainrule::optim
