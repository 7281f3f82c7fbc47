// Seeded shuffling, mini-batches and train/validation splits over row indices 0..n-1.
//
// The lecture trains full-batch (one epoch = one pass over all 10 observations, one update);
// mini-batches are the "epoch consists of multiple iterations" case it mentions.
//
//   for (const auto& batch : make_batches(10, 4, /*shuffle=*/true, /*seed=*/epoch))
//     ...  // batch holds 4, 4 and 2 row indices; together they cover 0..9 once
//
// Reproducibility: results depend only on the arguments, on every platform and standard
// library. The generator is std::mt19937_64 (whose output sequence the C++ standard fixes),
// the shuffle is our own Fisher-Yates and bounded draws use rejection sampling, because
// std::shuffle and std::uniform_int_distribution are implementation-defined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chainrule::nn {

// A uniformly random permutation of 0..n-1 drawn with the given seed (n = 0 gives {}).
// Fisher-Yates: for i = n-1 down to 1, swap element i with element j, j uniform in [0, i].
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed);

// Splits the row indices 0..n-1 into consecutive batches of batch_size indices; the last batch
// holds the remaining n % batch_size indices, or is dropped when drop_last is true.
// With shuffle, the indices are permutation(n, seed) instead of 0..n-1 (the seed is unused
// otherwise); pass a different seed per epoch to reshuffle every epoch.
//   make_batches(5, 2, false, 0)        -> {{0, 1}, {2, 3}, {4}}
//   make_batches(5, 2, false, 0, true)  -> {{0, 1}, {2, 3}}
// n = 0 gives no batches. Throws std::invalid_argument if batch_size is 0.
std::vector<std::vector<std::size_t>> make_batches(std::size_t n, std::size_t batch_size, bool shuffle,
                                                   std::uint64_t seed, bool drop_last = false);

// Disjoint index lists covering 0..n-1, each sorted ascending.
struct TrainValidationSplit {
  std::vector<std::size_t> train;
  std::vector<std::size_t> validation;
};

// Holds out a random ceil(n * validation_fraction) of the rows for validation, as sklearn's
// train_test_split does (a product within 1e-9 of an integer is not rounded up), and keeps the
// rest for training. validation_fraction = 0 puts every row in train.
//   auto [train, validation] = train_validation_split(10, 0.2, 42);   // 8 and 2 indices
// Throws std::invalid_argument if validation_fraction is outside [0, 1) or NaN, or if the split
// would leave no training row (e.g. n = 1 with any fraction > 0).
TrainValidationSplit train_validation_split(std::size_t n, double validation_fraction, std::uint64_t seed);

}  // namespace chainrule::nn
