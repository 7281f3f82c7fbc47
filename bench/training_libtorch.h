#pragma once
// The training workloads' weights in and out of a LibTorch network (see bench/training.h).
#include <torch/torch.h>

#include <vector>

namespace chainrule::bench {

// Copies `values` into `params` in order under NoGradGuard and returns them, for an optimizer.
inline std::vector<torch::Tensor> load_params(std::vector<torch::Tensor> params,
                                              const std::vector<std::vector<float>>& values) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params.size(); ++k) {
    const auto n = static_cast<int64_t>(values.at(k).size());
    params[k].copy_(torch::from_blob(const_cast<float*>(values[k].data()), {n}, torch::kFloat32).view_as(params[k]));
  }
  return params;
}

inline std::vector<std::vector<float>> float_params(const std::vector<torch::Tensor>& params) {
  std::vector<std::vector<float>> out;
  for (const torch::Tensor& t : params) {
    const torch::Tensor c = t.detach().contiguous();
    out.emplace_back(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return out;
}

}  // namespace chainrule::bench
