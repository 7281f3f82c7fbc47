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
// PyTorch's own optimizer checkpoints are pickles, which this is not. A scheduler's position is
// not part of the state: give StepLR the epochs already counted (its last_epoch argument);
// ReduceLROnPlateau's best value and counters start afresh.
#include <filesystem>

#include "optim/optimizer.h"

namespace chainrule::optim {

// Writes optimizer.state_dict() to `path`, atomically. std::runtime_error naming the path for an
// I/O failure.
void save(const Optimizer& optimizer, const std::filesystem::path& path);

// Reads `path` into `optimizer` (load_state_dict). Throws std::runtime_error naming the path for an
// unreadable or malformed file, and std::invalid_argument naming the path for a file written by
// another kind of optimizer ("written by SGD, loading into Adam") or one whose state does not fit
// this optimizer's parameters (load_state_dict's problems). The optimizer is unchanged after any
// error.
void load(Optimizer& optimizer, const std::filesystem::path& path);

}  // namespace chainrule::optim
