#include "nn/standardizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace chainrule::nn {

Standardizer::Standardizer(Options options) : options_(options) {}

Standardizer Standardizer::from_values(std::vector<double> mean, std::vector<double> sd, Options options) {
  if (mean.empty()) throw std::invalid_argument("Standardizer::from_values: no columns (mean is empty)");
  if (mean.size() != sd.size())
    throw std::invalid_argument(
        fmt::format("Standardizer::from_values: {} means but {} standard deviations", mean.size(), sd.size()));
  for (std::size_t j = 0; j < mean.size(); ++j) {
    if (!std::isfinite(mean[j]))
      throw std::invalid_argument(fmt::format("Standardizer::from_values: mean[{}] = {} is not finite", j, mean[j]));
    if (!std::isfinite(sd[j]) || !(sd[j] > 0.0))
      throw std::invalid_argument(
          fmt::format("Standardizer::from_values: sd[{}] = {} must be finite and > 0", j, sd[j]));
  }
  Standardizer z(options);
  z.mean_ = std::move(mean);
  z.sd_ = std::move(sd);
  return z;
}

void Standardizer::fit(const std::vector<std::vector<double>>& rows) {
  const std::size_t n = rows.size();
  if (n == 0) throw std::invalid_argument("Standardizer::fit: no rows to fit on");
  const std::size_t d = rows[0].size();
  if (d == 0) throw std::invalid_argument("Standardizer::fit: rows have no columns");
  if (n <= options_.ddof)
    throw std::invalid_argument(fmt::format(
        "Standardizer::fit: {} row(s) but ddof = {} needs more than {}; use Options{{.ddof = 0}} for tiny data",
        n, options_.ddof, options_.ddof));
  for (std::size_t i = 0; i < n; ++i) {
    if (rows[i].size() != d)
      throw std::invalid_argument(
          fmt::format("Standardizer::fit: row {} has {} values, row 0 has {}", i, rows[i].size(), d));
    for (std::size_t j = 0; j < d; ++j)
      if (!std::isfinite(rows[i][j]))
        throw std::invalid_argument(
            fmt::format("Standardizer::fit: row {} column {} is {}, not a finite number", i, j, rows[i][j]));
  }

  // Two passes (mean first, then squared deviations) rather than sum/sum-of-squares, which
  // cancels catastrophically when the mean is large compared with the spread.
  std::vector<double> mean(d, 0.0), sd(d, 0.0);
  for (const auto& row : rows)
    for (std::size_t j = 0; j < d; ++j) mean[j] += row[j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (std::size_t j = 0; j < d; ++j) {
    double ss = 0.0;
    bool constant = true;
    for (const auto& row : rows) {
      ss += (row[j] - mean[j]) * (row[j] - mean[j]);
      constant = constant && row[j] == rows[0][j];
    }
    // Decided on the raw values, not on sd == 0: rounding in the mean can leave a tiny
    // non-zero sd for a constant column, which would blow noise up to +-1.
    if (constant) {
      mean[j] = rows[0][j];
      sd[j] = 1.0;
    } else {
      sd[j] = std::sqrt(ss / static_cast<double>(n - options_.ddof));
      if (!std::isfinite(mean[j]) || !std::isfinite(sd[j]) || sd[j] == 0.0) fit_scaled(rows, j, mean[j], sd[j]);
    }
  }
  mean_ = std::move(mean);
  sd_ = std::move(sd);
}

// Values near the ends of a double's range: the plain sums overflow (1e308 + 1e308) or the squares
// underflow (values 5e-324 apart), which would give an infinite mean, or an sd of 0 or infinity
// that transform() divides by and from_values() (so nn::load) refuses. Dividing the column by its
// largest magnitude first keeps every intermediate in [-2, 4 n]; only a result that itself does not
// fit in a double is an error.
void Standardizer::fit_scaled(const std::vector<std::vector<double>>& rows, std::size_t j, double& mean,
                              double& sd) const {
  const std::size_t n = rows.size();
  double scale = 0.0, lo = rows[0][j], hi = rows[0][j];
  for (const auto& row : rows) {
    scale = std::max(scale, std::abs(row[j]));
    lo = std::min(lo, row[j]);
    hi = std::max(hi, row[j]);
  }
  double m = 0.0, ss = 0.0;  // scale > 0: the column is not constant, so some value is not 0
  for (const auto& row : rows) m += row[j] / scale;
  m /= static_cast<double>(n);
  for (const auto& row : rows) ss += (row[j] / scale - m) * (row[j] / scale - m);
  mean = m * scale;
  sd = std::sqrt(ss / static_cast<double>(n - options_.ddof)) * scale;
  if (!std::isfinite(sd) || sd == 0.0)
    throw std::invalid_argument(fmt::format(
        "Standardizer::fit: column {} (values from {} to {}) has a standard deviation that {} a double; "
        "rescale the column",
        j, lo, hi, sd == 0.0 ? "underflows to 0 in" : "overflows"));
}

void Standardizer::check_row(const std::vector<double>& row, const char* function, std::size_t index) const {
  if (!fitted())
    throw std::logic_error(fmt::format("Standardizer::{}: not fitted; call fit() or from_values() first", function));
  if (row.size() != mean_.size())
    throw std::invalid_argument(fmt::format("Standardizer::{}: row {} has {} values, expected {} (the fitted width)",
                                            function, index, row.size(), mean_.size()));
}

std::vector<double> Standardizer::transform_row(const std::vector<double>& row) const {
  check_row(row, "transform_row", 0);
  std::vector<double> out(row.size());
  for (std::size_t j = 0; j < row.size(); ++j) out[j] = (row[j] - mean_[j]) / sd_[j];
  return out;
}

std::vector<double> Standardizer::inverse_transform_row(const std::vector<double>& row) const {
  check_row(row, "inverse_transform_row", 0);
  std::vector<double> out(row.size());
  for (std::size_t j = 0; j < row.size(); ++j) out[j] = row[j] * sd_[j] + mean_[j];
  return out;
}

std::vector<std::vector<double>> Standardizer::transform(const std::vector<std::vector<double>>& rows) const {
  if (!fitted()) check_row({}, "transform", 0);
  for (std::size_t i = 0; i < rows.size(); ++i) check_row(rows[i], "transform", i);
  std::vector<std::vector<double>> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(transform_row(row));
  return out;
}

std::vector<std::vector<double>> Standardizer::inverse_transform(const std::vector<std::vector<double>>& rows) const {
  if (!fitted()) check_row({}, "inverse_transform", 0);
  for (std::size_t i = 0; i < rows.size(); ++i) check_row(rows[i], "inverse_transform", i);
  std::vector<std::vector<double>> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(inverse_transform_row(row));
  return out;
}

}  // namespace chainrule::nn
