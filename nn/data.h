// From data to tensors and back: rows of numbers to a Tensor [N, D], mini-batches of rows by index,
// class labels, and small data sets generated from a seed (a two-class spiral, two moons, a noisy sine).
//
//   nn::Dataset d = nn::make_spiral({.points_per_class = 200, .seed = 7});   // features 400 x 2
//   Tensor x = nn::rows_to_tensor(d.features, DType::float64);               // [400, 2]
//   std::vector<int64_t> y = nn::to_labels(d.targets);                       // 400 labels, 0 or 1
//   for (const auto& batch : nn::make_batches(400, 32, true, epoch)) {
//     Tensor xb = nn::batch_rows(x, batch);                                  // [32, 2] (last: [16, 2])
//     std::vector<int64_t> yb = nn::batch_labels(y, batch);
//     ...
//   }
//   double acc = nn::accuracy(nn::argmax_labels(model->forward(x)), y);      // in [0, 1]
//
// Everything here is data handling: none of it is recorded by autograd, and batch_rows refuses a
// tensor that requires grad. A generated data set is pinned by its seed: it draws from
// chainrule::Generator, whose distributions are the library's own, so every standard library gives
// the same draws (the points may differ in the last bits where the platforms' sin and cos do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"
#include "nn/csv.h"

namespace chainrule::nn {

// ---- rows to tensors ----------------------------------------------------------------------------

// Rows of equal width D (N >= 1 rows, D >= 1) as a Tensor [N, D] in `dtype`, row r being rows[r]:
//   rows_to_tensor({{1, 2}, {3, 4}, {5, 6}}, DType::float64)   // [3, 2]
// Values are copied as they are (float32 rounds them). The result does not require grad.
// Throws std::invalid_argument for no rows, empty rows, or a ragged row (naming it and both widths:
// "rows_to_tensor: row 2 has 3 values, row 0 has 2").
Tensor rows_to_tensor(const std::vector<std::vector<double>>& rows, DType dtype = DType::float32);

// The rows of `data` [N, ...] at `indices`, in the order given, as a new Tensor [B, ...] with
// B = indices.size() (repeats allowed), e.g. one mini-batch from nn::make_batches:
//   batch_rows(x, {4, 0, 2})   // [3, D]: rows 4, 0 and 2 of x
// Throws std::invalid_argument for an undefined or 0-d tensor, no indices, or a tensor that
// requires grad (the copy would cut it from the graph); std::out_of_range for an index >= N,
// naming the index, its position in `indices` and N: "batch_rows: index 7 (position 1) is out of
// range for 5 rows".
Tensor batch_rows(const Tensor& data, const std::vector<std::size_t>& indices);

// ---- class labels -------------------------------------------------------------------------------

// Class labels as the class indices CrossEntropyLoss takes. Each value must be a whole number >= 0
// (2.0 -> 2; 0.5 or -1 is std::invalid_argument naming the row and the value).
std::vector<int64_t> to_labels(const std::vector<double>& values);
// The same for targets with one column (N x 1, as nn::select and the generators give them);
// a row with another width is std::invalid_argument naming the row and its width.
std::vector<int64_t> to_labels(const std::vector<std::vector<double>>& targets);

// labels[indices[0]], labels[indices[1]], ...: the labels of one mini-batch (same errors as
// batch_rows for an index out of range).
std::vector<int64_t> batch_labels(const std::vector<int64_t>& labels, const std::vector<std::size_t>& indices);

// The predicted class of each row of `scores` [N, C] (logits or probabilities): the index of the
// row's largest value, the first one on ties. [C] is one row. Throws std::invalid_argument for an
// undefined tensor, a tensor with more than 2 dims, or C = 0.
std::vector<int64_t> argmax_labels(const Tensor& scores);

// The fraction of positions where predicted and labels agree, in [0, 1]. Throws
// std::invalid_argument if the sizes differ or are 0.
double accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& labels);

// ---- generated data sets ------------------------------------------------------------------------

struct SpiralOptions {
  std::size_t points_per_class = 200;  // >= 1
  double turns = 1.0;                  // full turns per unit of radius, > 0
  double inner_radius = 0.1;           // where the arms start, in [0, 1); they end at radius 1
  double noise = 0.05;                 // standard deviation of the Gaussian noise on x1 and x2, >= 0
  std::uint64_t seed = 0;
};

// Two interleaved spiral arms, class 0 and class 1 (the arm of class 1 is class 0's turned by
// half a circle). Point i of class c, with r uniform in [inner_radius, 1) and e1, e2 ~ N(0, noise^2):
//   angle = 2 pi * turns * r + c * pi
//   x1 = r * cos(angle) + e1,       x2 = r * sin(angle) + e2
// Along any ray from the origin the arms alternate every 1 / (2 * turns) of radius (0.33 for 1.5
// turns), which is how much noise the classes can take apart. The arms start at inner_radius
// because at the centre they meet: with inner_radius 0 the innermost points of the two classes are
// closer than the noise and no classifier can tell them apart.
// Features N x 2 ("x1", "x2"), targets N x 1 ("class", 0 or 1), N = 2 * points_per_class; the
// rows alternate between the classes (class 0, class 1, class 0, ...). The points lie within
// about 1 + 3 * noise of the origin, so they need no standardisation.
// Throws std::invalid_argument for options out of range, naming the option and its value.
Dataset make_spiral(const SpiralOptions& options = {});

struct MoonsOptions {
  std::size_t n_samples = 100;  // >= 2
  double noise = 0.1;           // standard deviation of the Gaussian noise on x1 and x2, >= 0
  std::uint64_t seed = 0;
};

// Two interleaving half circles (scikit-learn's make_moons, the data set of micrograd's demo):
// class 0 on the upper one, class 1 on the lower one, n_out = n_samples / 2 and n_in = n_samples -
// n_out points at evenly spaced angles t_k = pi k / (n - 1), k = 0..n - 1 (t = 0 for n = 1), then
// e1, e2 ~ N(0, noise^2):
//   class 0:  x1 = cos(t_k) + e1,        x2 = sin(t_k) + e2
//   class 1:  x1 = 1 - cos(t_k) + e1,    x2 = 1 - sin(t_k) - 0.5 + e2
// Features N x 2 ("x1", "x2"), targets N x 1 ("class", 0 or 1). The rows alternate between the
// classes while both have points (scikit-learn shuffles them instead); the noise is drawn in row
// order (e1, e2 per row). Throws std::invalid_argument for options out of range.
Dataset make_moons(const MoonsOptions& options = {});

struct NoisySineOptions {
  std::size_t n = 200;  // number of points, >= 1
  double low = -3.0;    // x is drawn uniformly from [low, high); low < high
  double high = 3.0;
  double noise = 0.1;   // standard deviation of the Gaussian noise on y, >= 0
  std::uint64_t seed = 0;
};

// y = sin(x) + e, e ~ N(0, noise^2), for n values of x drawn uniformly from [low, high) (in the
// order drawn, not sorted). Features N x 1 ("x"), targets N x 1 ("y").
// Throws std::invalid_argument for options out of range, naming the option and its value.
Dataset make_noisy_sine(const NoisySineOptions& options = {});

}  // namespace chainrule::nn
