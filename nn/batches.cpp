#include "nn/batches.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "nn/reserve.h"

namespace chainrule::nn {
namespace {

// Uniform integer in [0, bound), bound >= 1. Rejecting draws below 2^64 mod bound leaves a
// range whose size is a multiple of bound, so `r % bound` has no modulo bias.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;  // == 2^64 mod bound
  while (true) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> indices;
  detail::reserve_for(indices, n, "permutation");
  indices.resize(n);
  std::iota(indices.begin(), indices.end(), std::size_t{0});
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(uniform_below(rng, i));
    std::swap(indices[i - 1], indices[j]);
  }
  return indices;
}

std::vector<std::vector<std::size_t>> make_batches(std::size_t n, std::size_t batch_size, bool shuffle,
                                                   std::uint64_t seed, bool drop_last) {
  if (batch_size == 0) throw std::invalid_argument(fmt::format("make_batches: batch_size must be >= 1, got 0 (n = {})", n));
  std::vector<std::size_t> order;
  if (shuffle) {
    order = permutation(n, seed);
  } else {
    detail::reserve_for(order, n, "make_batches");
    order.resize(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
  }
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t start = 0; start < n; start += batch_size) {
    const std::size_t end = std::min(n, start + batch_size);
    if (drop_last && end - start < batch_size) break;
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

TrainValidationSplit train_validation_split(std::size_t n, double validation_fraction, std::uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0))
    throw std::invalid_argument(
        fmt::format("train_validation_split: validation_fraction must be in [0, 1), got {}", validation_fraction));
  // 0.07 * 100 is 7.000000000000001 in binary; a plain ceil would hold out 8 rows instead of 7.
  const double exact = validation_fraction * static_cast<double>(n);
  const auto n_validation = static_cast<std::size_t>(std::ceil(exact - 1e-9));
  if (n > 0 && n_validation >= n)
    throw std::invalid_argument(fmt::format(
        "train_validation_split: validation_fraction {} of {} rows leaves no training row", validation_fraction, n));

  const std::vector<std::size_t> order = permutation(n, seed);
  TrainValidationSplit split;
  split.validation.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_validation));
  split.train.assign(order.begin() + static_cast<std::ptrdiff_t>(n_validation), order.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

}  // namespace chainrule::nn
