#include "optim/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_set>
#include <vector>

namespace chainrule::optim {

std::string describe(StopReason reason) {
  switch (reason) {
    case StopReason::MaxEpochs: return "maximum number of epochs reached";
    case StopReason::LossBelowThreshold: return "loss below the threshold";
    case StopReason::TimeBudget: return "time budget used up";
    case StopReason::GradNormBelowMin: return "gradient norm below the minimum";
    case StopReason::ValidationNotImproving: return "validation loss stopped improving";
    case StopReason::LossNotFinite: return "loss is NaN or infinite (training diverged: try a smaller learning rate)";
  }
  return "?";
}

namespace {

// The parameters, each once (a tensor listed twice is counted and scaled once).
std::vector<Tensor> distinct(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> out;
  std::unordered_set<const void*> seen;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined()) throw std::invalid_argument(fmt::format("{}: parameter {} is undefined", op, i));
    if (seen.insert(params[i].impl()).second) out.push_back(params[i]);
  }
  return out;
}

// ||g||_2 over every defined gradient in one pass, kept as scale * sqrt(ssq) with scale the largest
// |g| so far (BLAS's dnrm2), so that squares beyond the double range do not overflow and no copy
// of all the gradients is held.
double gradient_norm(const std::vector<Tensor>& params) {
  double scale = 0.0, ssq = 1.0;
  bool infinite = false;  // a NaN anywhere still makes the norm NaN
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    for (double v : g.to_vector()) {
      const double a = std::abs(v);
      if (std::isnan(a)) return a;
      if (std::isinf(a)) {
        infinite = true;
      } else if (a > scale) {
        ssq = 1.0 + ssq * (scale / a) * (scale / a);
        scale = a;
      } else if (a > 0.0) {
        ssq += (a / scale) * (a / scale);
      }
    }
  }
  return infinite ? INFINITY : scale * std::sqrt(ssq);
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params) { return gradient_norm(distinct(params, "grad_norm")); }

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm))
    throw std::invalid_argument(fmt::format("clip_grad_norm: max_norm must be positive and finite, got {}", max_norm));
  const std::vector<Tensor> each = distinct(params, "clip_grad_norm");
  const double norm = gradient_norm(each);
  if (!std::isfinite(norm))
    throw std::runtime_error(fmt::format(
        "clip_grad_norm: the gradients' norm is {} (a gradient holds NaN or inf); nothing was scaled", norm));
  const double scale = max_norm / (norm + 1e-6);
  if (scale >= 1.0) return norm;
  NoGradGuard no_grad;
  for (const Tensor& p : each)
    if (Tensor g = p.grad(); g.defined()) g *= scale;
  return norm;
}

namespace {

void validate(const FitOptions& o) {
  if (o.max_epochs_ == 0) throw std::invalid_argument("fit: max_epochs must be at least 1, got 0");
  if (o.loss_below_ && !std::isfinite(*o.loss_below_))
    throw std::invalid_argument(fmt::format("fit: loss_below must be finite, got {}", *o.loss_below_));
  if (o.time_budget_ && !(*o.time_budget_ > 0))
    throw std::invalid_argument(fmt::format("fit: time_budget must be > 0 seconds, got {}", *o.time_budget_));
  if (o.grad_norm_below_ && !(*o.grad_norm_below_ > 0))
    throw std::invalid_argument(fmt::format("fit: grad_norm_below must be > 0, got {}", *o.grad_norm_below_));
  if (o.patience_ && *o.patience_ == 0) throw std::invalid_argument("fit: patience must be at least 1 epoch, got 0");
  if (!(o.min_delta_ >= 0)) throw std::invalid_argument(fmt::format("fit: min_delta must be >= 0, got {}", o.min_delta_));
}

}  // namespace

FitResult fit_epochs(const std::function<EpochReport(std::size_t)>& epoch, const FitOptions& options,
                     const std::function<double()>& validation_loss) {
  if (!epoch) throw std::invalid_argument("fit_epochs: the epoch function is empty");
  validate(options);
  if (options.patience_ && !validation_loss)
    throw std::invalid_argument("fit: the patience rule needs a validation_loss function");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  Progress progress(options.max_epochs_, options.progress_);
  FitResult result;
  std::size_t since_best = 0;
  for (std::size_t k = 1; k <= options.max_epochs_; ++k) {
    const EpochReport r = epoch(k);
    result.epochs = k;
    result.losses.push_back(r.loss);
    progress.update(k, r.loss);
    std::optional<StopReason> stop;
    if (!std::isfinite(r.loss)) stop = StopReason::LossNotFinite;
    if (!stop && options.loss_below_ && r.loss < *options.loss_below_) stop = StopReason::LossBelowThreshold;
    if (!stop && options.grad_norm_below_) {
      if (!r.grad_norm)
        throw std::invalid_argument("fit: the grad-norm rule needs the epoch to report its gradient norm");
      if (*r.grad_norm < *options.grad_norm_below_) stop = StopReason::GradNormBelowMin;
    }
    if (validation_loss) {
      double v;
      {
        NoGradGuard no_grad;
        v = validation_loss();
      }
      result.validation_losses.push_back(v);
      if (v < result.best_validation_loss - options.min_delta_) {
        result.best_validation_loss = v;
        result.best_epoch = k;
        since_best = 0;
      } else if (options.patience_ && ++since_best >= *options.patience_ && !stop) {
        stop = StopReason::ValidationNotImproving;
      }
    }
    if (!stop && options.time_budget_ && elapsed() >= *options.time_budget_) stop = StopReason::TimeBudget;
    if (stop) {
      result.reason = *stop;
      break;
    }
    result.reason = StopReason::MaxEpochs;
  }
  result.seconds = elapsed();
  progress.finish(describe(result.reason));
  return result;
}

FitResult fit(Optimizer& optimizer, const std::function<Tensor()>& loss_fn, const FitOptions& options,
              const std::function<double()>& validation_loss) {
  if (!loss_fn) throw std::invalid_argument("fit: the loss function is empty");
  const bool want_norm = options.grad_norm_below_.has_value();
  auto epoch = [&](std::size_t) {
    optimizer.zero_grad();
    const Tensor loss = loss_fn();
    if (!loss.defined() || loss.numel() != 1)
      throw std::invalid_argument(fmt::format("fit: loss_fn must return a one-element tensor, got shape {}",
                                              loss.defined() ? loss.shape().str() : "undefined"));
    EpochReport r{loss.item(), std::nullopt};
    if (!want_norm) {
      optimizer.backward_and_step(loss);
      return r;
    }
    loss.backward();
    r.grad_norm = grad_norm(optimizer.parameters());
    optimizer.step();
    return r;
  };
  return fit_epochs(epoch, options, validation_loss);
}

}  // namespace chainrule::optim
