#pragma once
// The training workloads' weights in and out of a chainrule network (see bench/training.h).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace chainrule::bench {

// Writes `values` into the float32 `params` in order (std::logic_error naming `workload` when a
// size differs) and returns them, for an optimizer's constructor.
inline std::vector<Tensor> load_params(std::vector<Tensor> params, const std::vector<std::vector<float>>& values,
                                       const std::string& workload) {
  for (size_t k = 0; k < params.size(); ++k) {
    if (static_cast<size_t>(params[k].numel()) != values.at(k).size())
      throw std::logic_error(workload + ": parameter " + std::to_string(k) + " has an unexpected size");
    std::copy(values[k].begin(), values[k].end(), params[k].mutable_data<float>());
  }
  return params;
}

inline std::vector<std::vector<float>> float_params(const std::vector<Tensor>& params) {
  std::vector<std::vector<float>> out;
  for (const Tensor& t : params) out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  return out;
}

}  // namespace chainrule::bench
