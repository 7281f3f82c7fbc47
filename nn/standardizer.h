// Z-score standardisation per column, the lecture's step 1a ("normalize the input data"):
//
//   X' = (X - mean) / sd            inverse:  X = X' * sd + mean
//
// with mean and sd computed per column over the rows passed to fit():
//
//   mean_j = (1/N) sum_i x_ij        sd_j = sqrt( sum_i (x_ij - mean_j)^2 / (N - ddof) )
//
// ddof = 1 (default) is the sample standard deviation with Bessel's correction, as Excel's
// STDEV/STDEV.S, R's sd() and torch.std() compute it; ddof = 0 is the population standard
// deviation, as sklearn's StandardScaler and numpy.std() compute it.
//
// A constant column (all values equal, including a fit on a single row with ddof = 0) gets
// sd = 1, as sklearn does, so it transforms to 0 instead of dividing by zero; test it with
// stddev() if it matters. Rows are "observations", columns "features"; every row passed to
// fit/transform must have the fitted width.
//
//   Standardizer z;                            // Options{.ddof = 1}
//   z.fit({{2, 1.5}, {2.8, 1.2}, {1.5, 1}});   // mean {2.1, 1.2333}, sd {0.6557, 0.2517}
//   auto scaled = z.transform({{2, 1.5}});     // {{-0.1525, 1.0596}}
//
// Findings about the lecture's numbers (slide "Step 1 a) Normalize the input data"):
//   The slides list 5 of the 10 observations (rows 1, 2, 3, 9, 10) raw and z-scored:
//     X1: 2, 2.8, 1.5, 2.5, 7.7  ->  -0.97, -0.69, -1.14, -0.79, 1.04
//     X2: 1.5, 1.2, 1, 2, 3.5    ->  -0.80, -0.97, -1.09, -0.52, 0.34
//   Least squares of x = mean + sd * z over the five pairs gives the 10-row parameters
//     X1: mean 4.7484, sd 2.8400      X2: mean 2.9054, sd 1.7522
//   which reproduce all ten printed z-scores to within 0.004 (the printed 2 decimals allow
//   0.005). Every (mean, sd) consistent with that rounding lies in X1: mean [4.740, 4.756],
//   sd [2.831, 2.849]; X2: mean [2.898, 2.912], sd [1.743, 1.761].
//   The slides cannot tell ddof: the five hidden rows are free (their sums are pinned at about
//   X1 31.0 and X2 19.85, their spread is not), so either ddof fits. ddof = 1 is the default
//   here because it is what Excel, R and torch.std() do by default.
//   A fit on the 5 shown rows alone cannot reproduce the slides (it centres them at their own
//   mean 3.3 / 1.84): ddof = 1 gives sd 2.5090 / 1.0015 and z within 0.71 (X1) and 1.32 (X2)
//   of the slides; ddof = 0 gives sd 2.2441 / 0.8958 and z within 0.92 and 1.51. To reproduce
//   the slides, use from_values({4.7484, 2.9054}, {2.8400, 1.7522}).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace chainrule::nn {

class Standardizer {
 public:
  struct Options {
    // Delta degrees of freedom: the divisor of the variance is N - ddof.
    // 1 = sample sd (Bessel, the default), 0 = population sd (sklearn's StandardScaler).
    std::size_t ddof = 1;
  };

  Standardizer() = default;
  explicit Standardizer(Options options);

  // A fitted standardiser with the given per-column parameters, e.g. the lecture's
  // from_values({4.7484, 2.9054}, {2.8400, 1.7522}). Throws std::invalid_argument if the
  // vectors are empty or differ in length, or any sd is not finite and > 0, or a mean is not finite.
  // `options` records how the values were fitted (kept for a later fit(), and by nn::save).
  static Standardizer from_values(std::vector<double> mean, std::vector<double> sd, Options options);
  static Standardizer from_values(std::vector<double> mean, std::vector<double> sd) {
    return from_values(std::move(mean), std::move(sd), Options());
  }

  // Computes mean and sd per column of `rows` (N x D), replacing any earlier fit.
  // Throws std::invalid_argument for 0 rows, 0 columns, rows of unequal width (naming the row
  // and both widths), a non-finite value (naming row and column), N <= ddof (e.g. one row
  // with the default ddof = 1), or a column whose sd does not fit in a double (finite values
  // such as -1e200 and 1e200 give an sd over the largest double; values 5e-324 apart, one that
  // rounds to 0). Sums that overflow on the way (1e308 + 1e308) are avoided, not an error.
  // On error the previous state is kept.
  void fit(const std::vector<std::vector<double>>& rows);

  // (x - mean) / sd for every row (N x D -> N x D). Zero rows give zero rows.
  // Throws std::logic_error before fit(), std::invalid_argument for a row of the wrong width.
  std::vector<std::vector<double>> transform(const std::vector<std::vector<double>>& rows) const;
  std::vector<double> transform_row(const std::vector<double>& row) const;

  // x' * sd + mean, the inverse of transform; same shapes and errors.
  std::vector<std::vector<double>> inverse_transform(const std::vector<std::vector<double>>& rows) const;
  std::vector<double> inverse_transform_row(const std::vector<double>& row) const;

  // Per-column parameters, D values each; empty before fit().
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& stddev() const { return sd_; }
  // Number of columns D of the fit; 0 before fit().
  std::size_t width() const { return mean_.size(); }
  bool fitted() const { return !mean_.empty(); }
  const Options& options() const { return options_; }

 private:
  void check_row(const std::vector<double>& row, const char* function, std::size_t index) const;
  void fit_scaled(const std::vector<std::vector<double>>& rows, std::size_t j, double& mean, double& sd) const;

  Options options_{};
  std::vector<double> mean_;
  std::vector<double> sd_;
};

}  // namespace chainrule::nn
