#pragma once
// KLDivLoss: the Kullback-Leibler divergence of a predicted distribution from a target one, as
// torch.nn.KLDivLoss, with its fourth reduction, batchmean.
#include <string>

#include "autograd/tensor.h"
#include "nn/loss_reduction.h"

namespace chainrule::nn {

// KLDivLoss's reductions: Reduction's three and torch's "batchmean", sum(l) / N with N the
// input's first dim (the KL divergence per sample when each row is a distribution; the sum for a
// 0-d input, as torch). A separate enum so that the other losses' Reduction keeps three values and
// no other loss can be given batchmean; KLDivLossOptions::reduction takes either.
enum class KLDivReduction { None, Mean, Sum, BatchMean };
const char* reduction_name(KLDivReduction r);  // "none", "mean", "sum", "batchmean"

// ---- KLDivLoss --------------------------------------------------------------------------------
//
//   input x: log-probabilities log q (e.g. log_softmax's output); target: probabilities p, or
//   log-probabilities log p with log_target(true); one shape (any) and one dtype, else
//   std::invalid_argument naming both.
//   l_i = p_i (log p_i - x_i)            log_target false (default); 0 where p_i == 0, as torch's
//                                        xlogy (a negative p_i gives NaN, as torch; so does
//                                        x_i = -inf at p_i = 0: 0 * -inf in p_i x_i)
//   l_i = e^(t_i) (t_i - x_i)            log_target true (t = log p: exact for tiny p, whose log
//                                        underflows; t = -inf with a finite x gives NaN, as torch)
//   dl/dx_i = -p_i; dl/dp_i = log p_i + 1 - x_i (p_i > 0). At p_i = 0 the target's gradient is
//   taken as -x_i (the p log p term contributes 0, its value's convention; the one-sided limit
//   is -inf and torch's xlogy backward gives NaN there). No gradient for a p_i < 0.
//   Reductions: None l; Sum sum(l); Mean sum(l) / numel (torch's default, which torch warns is not
//   the KL divergence); BatchMean sum(l) / N, the KL divergence averaged over the batch.
//
//   nn::KLDivLoss kl(nn::KLDivLossOptions().reduction(nn::KLDivReduction::BatchMean));
//   Tensor loss = kl(log_softmax(logits, 1), p);   // logits and p [N, C], rows of p summing to 1
struct KLDivLossOptions {
  KLDivLossOptions& reduction(KLDivReduction r);  // std::invalid_argument for a cast integer
  KLDivLossOptions& reduction(Reduction r);       // None, Mean or Sum: KLDivReduction's of that name
  KLDivLossOptions& log_target(bool on) { log_target_ = on; return *this; }
  KLDivReduction reduction() const { return reduction_; }
  bool log_target() const { return log_target_; }

 private:
  KLDivReduction reduction_ = KLDivReduction::Mean;
  bool log_target_ = false;
};

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivLossOptions& options = {});

class KLDivLoss {
 public:
  explicit KLDivLoss(KLDivLossOptions options = {}) : options_(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return kl_div(input, target, options_); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  const KLDivLossOptions& options() const { return options_; }
  std::string to_string() const;  // "KLDivLoss(reduction=batchmean, log_target=false)"

 private:
  KLDivLossOptions options_;
};

}  // namespace chainrule::nn
