#pragma once
// fit: a training loop whose stopping rules are the lecture's list (slide "Repeat steps 3-6"):
//   1) maximum number of epochs reached          -> StopReason::MaxEpochs
//   2) loss below a threshold (the slides' goal:  -> StopReason::LossBelowThreshold
//      summed-up error < 0.001), or a time budget -> StopReason::TimeBudget
//   3) gradient norm below a minimum             -> StopReason::GradNormBelowMin
//   4) validation loss not improving for N epochs -> StopReason::ValidationNotImproving
// and which rule stopped it is reported. An epoch whose loss is NaN or infinite stops it too
// (StopReason::LossNotFinite: training diverged; every later epoch would compute on NaNs), as
// Keras's TerminateOnNaN. Progress is shown on a terminal as a bar, as plain lines
// in a log, or not at all (FitOptions::progress).
//
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.5));
//   auto result = optim::fit(opt, [&] { return criterion(model->forward(x), y); },
//                            optim::FitOptions().max_epochs(20000).loss_below(0.001));
//   fmt::print("{} after {} epochs\n", describe(result.reason), result.epochs);
//
// One epoch of the full-batch fit is: zero_grad, loss = loss_fn(), backward, grad-norm, step. The
// loss that the threshold sees is the epoch's forward loss, measured before its update, as the
// slides' tables are. Without a grad-norm rule nothing reads the gradients between backward and
// step, so the epoch is optimizer.backward_and_step(loss) (fused for SGD without momentum), and
// the parameters' grad() is undefined after fit. An epoch whose loss is not finite has still been
// stepped when fit stops (the stop is read from the loss the step used, as a hand-written loop's
// check after optimizer.step() would): its parameters hold the diverged update.
// fit is a loop of steps, not one transaction: an exception from loss_fn, validation_loss or a step
// propagates with the parameters (and the optimizer's state) as the steps completed before it left
// them, the gradients dropped (each epoch starts with zero_grad), and no FitResult.
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "optim/optimizer.h"
#include "optim/progress.h"

namespace chainrule::optim {

enum class StopReason {
  MaxEpochs,
  LossBelowThreshold,
  TimeBudget,
  GradNormBelowMin,
  ValidationNotImproving,
  LossNotFinite,
};
// "maximum number of epochs reached", "loss below the threshold", ...
std::string describe(StopReason reason);

struct FitOptions {
  std::size_t max_epochs_ = 1000;
  std::optional<double> loss_below_;       // stop once an epoch's loss < this
  std::optional<double> time_budget_;      // seconds of training
  std::optional<double> grad_norm_below_;  // stop once ||all gradients||_2 < this
  std::optional<std::size_t> patience_;    // stop after this many epochs without a better validation loss
  double min_delta_ = 0.0;                 // a validation loss must beat the best by more than this
  ProgressOptions progress_;

  FitOptions& max_epochs(std::size_t n) { max_epochs_ = n; return *this; }
  FitOptions& loss_below(double v) { loss_below_ = v; return *this; }
  FitOptions& time_budget(double seconds) { time_budget_ = seconds; return *this; }
  FitOptions& grad_norm_below(double v) { grad_norm_below_ = v; return *this; }
  FitOptions& patience(std::size_t epochs) { patience_ = epochs; return *this; }
  FitOptions& min_delta(double v) { min_delta_ = v; return *this; }
  FitOptions& progress(ProgressOptions p) { progress_ = std::move(p); return *this; }
  FitOptions& quiet() { progress_.mode = ProgressMode::Quiet; return *this; }
};

struct FitResult {
  StopReason reason = StopReason::MaxEpochs;
  std::size_t epochs = 0;                  // epochs run
  double seconds = 0.0;
  std::vector<double> losses;              // one per epoch
  std::vector<double> validation_losses;   // one per epoch when a validation loss was given
  double best_validation_loss = std::numeric_limits<double>::infinity();  // +inf without a validation loss
  std::size_t best_epoch = 0;              // the epoch of best_validation_loss (0: none)
};

// What one epoch of a custom loop reports to fit_epochs.
struct EpochReport {
  double loss = 0.0;
  std::optional<double> grad_norm;  // needed only for the grad-norm rule
};

// Full-batch training: see the header comment. `validation_loss`, when given, is evaluated after
// each epoch's update (under NoGradGuard) and feeds the patience rule and best_epoch. Options are validated
// (std::invalid_argument naming the bad value).
FitResult fit(Optimizer& optimizer, const std::function<Tensor()>& loss_fn, const FitOptions& options,
              const std::function<double()>& validation_loss = {});

// Any loop (mini-batches, Scalar models): `epoch(k)` (k = 1, 2, ...) runs one epoch, updates and
// reports; fit_epochs applies the same stopping rules, progress and history. `validation_loss`
// runs after each epoch under NoGradGuard (nothing it computes is recorded).
FitResult fit_epochs(const std::function<EpochReport(std::size_t epoch)>& epoch, const FitOptions& options,
                     const std::function<double()>& validation_loss = {});

// ||g||_2 over every defined gradient of `params`, each parameter once (scaled while summing, so
// gradients whose squares overflow a double still give their norm).
double grad_norm(const std::vector<Tensor>& params);

// Gradient clipping, as torch.nn.utils.clip_grad_norm_: when the joint norm ||g||_2 of every
// defined gradient of `params` exceeds max_norm, each gradient is scaled in place by
// max_norm / (||g||_2 + 1e-6). Returns the norm before clipping. Call it between backward() and
// step(). max_norm must be positive and finite, and a norm that is not finite (a NaN or inf in a
// gradient) throws std::runtime_error naming it with nothing scaled (PyTorch's
// error_if_nonfinite = true: scaling by NaN would spread it to every parameter).
//   loss.backward();
//   optim::clip_grad_norm(model->parameters(), 1.0);
//   opt.step();
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace chainrule::optim
