#include "nn/loss_kl_div.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule::nn {

const char* reduction_name(KLDivReduction r) {
  switch (r) {
    case KLDivReduction::None: return "none";
    case KLDivReduction::Mean: return "mean";
    case KLDivReduction::Sum: return "sum";
    case KLDivReduction::BatchMean: return "batchmean";
  }
  return "?";
}

KLDivLossOptions& KLDivLossOptions::reduction(KLDivReduction r) {
  if (r != KLDivReduction::None && r != KLDivReduction::Mean && r != KLDivReduction::Sum &&
      r != KLDivReduction::BatchMean)
    throw std::invalid_argument(fmt::format(
        "KLDivLossOptions::reduction: {} is not a KLDivReduction (None, Mean, Sum or BatchMean)", static_cast<int>(r)));
  reduction_ = r;
  return *this;
}

KLDivLossOptions& KLDivLossOptions::reduction(Reduction r) {
  switch (checked_reduction(r, "KLDivLossOptions")) {
    case Reduction::None: reduction_ = KLDivReduction::None; break;
    case Reduction::Mean: reduction_ = KLDivReduction::Mean; break;
    case Reduction::Sum: reduction_ = KLDivReduction::Sum; break;
  }
  return *this;
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivLossOptions& options) {
  detail::check_pair(input, target, "KLDivLoss");
  Tensor l;
  if (options.log_target()) {
    l = exp(target) * (target - input);
  } else {
    // torch's xlogy(p, p) - p x: p log p is 0 where p == 0. The log reads 1 there, so that neither
    // its value nor its derivative (1/p) is infinite in the branch where() discards.
    const Tensor nonzero = detail::constant([&] { return 1.0 - equal(target.detach(), 0.0); });
    const Tensor p_log_p = where(nonzero, target * log(where(nonzero, target, 1.0)), 0.0);
    l = p_log_p - target * input;
  }
  switch (options.reduction()) {
    case KLDivReduction::None: return l;
    case KLDivReduction::Mean: return mean(l);
    case KLDivReduction::Sum: return sum(l);
    case KLDivReduction::BatchMean: return input.dim() == 0 ? sum(l) : sum(l) / static_cast<double>(input.size(0));
  }
  return l;
}

std::string KLDivLoss::to_string() const {
  return fmt::format("KLDivLoss(reduction={}, log_target={})", reduction_name(options_.reduction()),
                     options_.log_target());
}

}  // namespace chainrule::nn
