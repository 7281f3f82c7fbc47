// The lecture, run from start to finish: design, initialise, forward, cost, backprop, update,
// repeat (../shared/seeds: "How (Shallow) Neural Networks work"). Each step prints the slides'
// table for the five observations the slides show (rows 1, 2, 3, 9 and 10 of their ten), then the
// network trains until the summed-up error is below 0.001. The same network is built twice, neuron
// by neuron from Scalars and from nn::Dense + nn::Sigmoid + MSELoss + SGD, and the two must agree.
//
//   lecture                 all the steps, then training with snapshots (the README's main job)
//   lecture --compact       only the training
//   lecture --plot loss.svg also write the loss history (loss.svg and loss.csv)
//   lecture --data f.csv    other data (header Y,X1,X2)
//   lecture --dot obs1.dot  also write observation 1's graph (Graphviz; dot -Tsvg obs1.dot -o obs1.svg)
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "autograd/dot.h"
#include "examples/cli.h"
#include "examples/lecture_net.h"
#include "nn/csv.h"
#include "nn/nn.h"
#include "nn/standardizer.h"
#include "optim/loss_plot.h"
#include "optim/optim.h"
#include "optim/trainer.h"

using namespace chainrule;
using lecture::Observation;
using lecture::ScalarNet;

namespace {

constexpr double kLearningRate = 0.5;
constexpr double kGoal = 0.001;            // "summed-up error < 0.001"
constexpr std::size_t kMaxEpochs = 100000;

struct Data {
  std::vector<double> y;
  std::vector<std::vector<double>> raw, z;
  bool slides = true;  // the slides' rows (examples/data/lecture.csv): their numbers are printed beside
};

// Step 1a: z-scores. The slides standardised their ten rows; five rows cannot reproduce their mean
// and sd, so the ones their printed z-scores imply are used (see nn/standardizer.h), and the
// network computes with the z-scores rounded to two decimals, as the slides do. Other data
// (--data) is standardised with its own mean and sd.
Data load(const std::filesystem::path& path, bool slides, bool print) {
  const nn::CsvTable table = nn::read_csv(path);
  const nn::Dataset d = nn::select(table, {"X1", "X2"}, {"Y"});
  nn::Standardizer scaler = nn::Standardizer::from_values({4.7484, 2.9054}, {2.8400, 1.7522});
  if (!slides) {
    scaler = nn::Standardizer();
    scaler.fit(d.features);
  }
  Data out;
  out.slides = slides;
  out.raw = d.features;
  for (const auto& t : d.targets) out.y.push_back(t[0]);
  for (auto row : scaler.transform(d.features)) {
    for (double& v : row) v = std::round(v * 100) / 100;
    out.z.push_back(row);
  }
  if (print) {
    fmt::print("Step 1a: normalise the input data (z-score, X' = (X - mean) / sd)\n");
    if (slides) {
      fmt::print("  mean X1 {:.4f}, X2 {:.4f}; sd X1 {:.4f}, X2 {:.4f}: the values the slides' z-scores imply\n",
                 scaler.mean()[0], scaler.mean()[1], scaler.stddev()[0], scaler.stddev()[1]);
      fmt::print("  for their ten rows (a fit on the five rows shown cannot reproduce them).\n\n");
    } else {
      fmt::print("  mean X1 {:.4f}, X2 {:.4f}; sd X1 {:.4f}, X2 {:.4f}: fitted on these {} rows.\n\n", scaler.mean()[0],
                 scaler.mean()[1], scaler.stddev()[0], scaler.stddev()[1], out.y.size());
    }
    fmt::print("  {:>3}  {:>5} {:>5}  {:>6} {:>6}\n", "Y", "X1", "X2", "X1'", "X2'");
    for (std::size_t i = 0; i < out.y.size(); ++i)
      fmt::print("  {:>3}  {:>5} {:>5}  {:>6.2f} {:>6.2f}\n", out.y[i], out.raw[i][0], out.raw[i][1], out.z[i][0],
                 out.z[i][1]);
    fmt::print("\n");
  }
  return out;
}

void print_weights(const ScalarNet& n, const char* title) {
  if (*title) fmt::print("{}\n", title);
  fmt::print("  {:<9} {:>7} {:>7} {:>7}\n", "", "W1", "W2", "W3");
  fmt::print("  {:<9} {:>7.3f} {:>7.3f} {:>7.3f}\n", "IN1 -> HL", n.w1[0][0].value(), n.w1[0][1].value(), n.w1[0][2].value());
  fmt::print("  {:<9} {:>7.3f} {:>7.3f} {:>7.3f}\n", "IN2 -> HL", n.w1[1][0].value(), n.w1[1][1].value(), n.w1[1][2].value());
  fmt::print("  {:<9} {:>7.3f} {:>7.3f} {:>7.3f}\n", "HL -> ON", n.w2[0].value(), n.w2[1].value(), n.w2[2].value());
  fmt::print("  {:<9} {:>7} {:>7} {:>7} {:>7}\n", "", "H1", "H2", "H3", "ON");
  fmt::print("  {:<9} {:>7.3f} {:>7.3f} {:>7.3f} {:>7.3f}\n\n", "Bias", n.b1[0].value(), n.b1[1].value(),
             n.b1[2].value(), n.b2.value());
}

// Forward for every observation, with the slides' columns; returns the summed-up error
// sum (Output - Y)^2 (the "Cost" column of the later slides).
double print_forward(const ScalarNet& net, const Data& d, bool both_costs) {
  fmt::print("  {:>3} {:>6} {:>6} | {:>5} {:>5} {:>5} | {:>6} | {:>13}{}\n", "Y", "X1", "X2", "H1", "H2", "H3",
             "Output", "(Out - Y)^2", both_costs ? "  1/2 (Out - Y)^2" : "");
  double sum_sq = 0, sum_half = 0;
  for (std::size_t i = 0; i < d.y.size(); ++i) {
    const Observation o = lecture::forward(net, d.z[i][0], d.z[i][1], d.y[i]);
    const double sq = std::pow(o.out.value() - d.y[i], 2);
    sum_sq += sq;
    sum_half += o.half_cost.value();
    fmt::print("  {:>3} {:>6.2f} {:>6.2f} | {:>5.2f} {:>5.2f} {:>5.2f} | {:>6.3f} | {:>13.3f}", d.y[i], d.z[i][0], d.z[i][1],
               o.h[0].value(), o.h[1].value(), o.h[2].value(), o.out.value(), sq);
    if (both_costs) fmt::print("  {:>16.3f}", o.half_cost.value());
    fmt::print("\n");
  }
  fmt::print("  summed-up error sum (Out - Y)^2 = {:.4f}", sum_sq);
  if (both_costs)
    fmt::print("; C(W) = 1/N sum 1/2 (Out - Y)^2 = {:.4f}; 1/2 sum (Out - Y)^2 = {:.4f}", sum_half / d.y.size(), sum_half);
  fmt::print("\n\n");
  return sum_sq;
}

// Step 5: backprop, one observation at a time, as the slides do. Err is dC/d(value) and the
// backprop error (BPE) is dC/d(input sum), read off the interior nodes after backward().
void print_backprop(ScalarNet& net, const Data& d) {
  fmt::print("Step 5: backpropagation, per observation (C_i = 1/2 (Output - Y)^2)\n");
  fmt::print("  Err = dC/d(node value), BPE = dC/d(node input sum) = Err * f'(z)\n");
  fmt::print("  {:>3} | {:>7} {:>7} | {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7}\n", "obs", "Err ON", "BPE ON", "Err H1",
             "Err H2", "Err H3", "BPE H1", "BPE H2", "BPE H3");
  for (std::size_t i = 0; i < d.y.size(); ++i) {
    const Observation o = lecture::forward(net, d.z[i][0], d.z[i][1], d.y[i]);
    o.half_cost.backward();
    fmt::print("  {:>3} | {:>7.3f} {:>7.3f} | {:>7.3f} {:>7.3f} {:>7.3f} | {:>7.3f} {:>7.3f} {:>7.3f}\n", i + 1,
               o.out.grad(), o.z_on.grad(), o.h[0].grad(), o.h[1].grad(), o.h[2].grad(), o.z[0].grad(),
               o.z[1].grad(), o.z[2].grad());
  }
  if (d.slides)
    fmt::print("  (slides, observation 1: Err ON 0.18, BPE ON 0.025; Err H -0.015 -0.015 -0.008; BPE H -0.003 -0.004 -0.001)\n");
  fmt::print("\n");
  for (Scalar* p : net.parameters()) p->zero_grad();
}

// Step 6 for observation 1 alone: w = w - alpha * gradient (BPE_to * value_from).
void print_first_update(const ScalarNet& net, const Data& d) {
  ScalarNet copy;  // same initial weights
  const Observation o = lecture::forward(copy, d.z[0][0], d.z[0][1], d.y[0]);
  o.half_cost.backward();
  copy.update(kLearningRate);
  fmt::print("Step 6: update with learning rate {} after observation 1 alone\n", kLearningRate);
  if (d.slides)
    fmt::print("  H1->ON {:.3f} (slides -0.608), bias ON {:.3f} (slides -0.613), IN1->H1 {:.3f} (slides -0.202)\n\n",
               copy.w2[0].value(), copy.b2.value(), copy.w1[0][0].value());
  else
    fmt::print("  H1->ON {:.3f}, bias ON {:.3f}, IN1->H1 {:.3f}\n\n", copy.w2[0].value(), copy.b2.value(),
               copy.w1[0][0].value());
  (void)net;
}

// One epoch with Scalars: forward every observation, C = 1/2 sum (Output - Y)^2, backward, update.
// Returns the summed-up error of the epoch's forward pass.
double scalar_epoch(ScalarNet& net, const Data& d) {
  Scalar total = 0.0;
  double sum_sq = 0;
  for (std::size_t i = 0; i < d.y.size(); ++i) {
    const Observation o = lecture::forward(net, d.z[i][0], d.z[i][1], d.y[i]);
    total = total + o.half_cost;
    sum_sq += 2 * o.half_cost.value();
  }
  total.backward();
  net.update(kLearningRate);
  return sum_sq;
}

bool is_snapshot(std::size_t epoch) { return epoch == 1 || epoch == 10 || epoch == 100 || epoch == 1000; }

struct Args {
  bool compact = false, help = false;
  std::string plot, dot;
  std::filesystem::path data = std::filesystem::path(CHAINRULE_SOURCE_DIR) / "examples/data/lecture.csv";
  bool slides = true;  // no --data
};

constexpr const char* kUsage = "usage: lecture [--compact] [--plot FILE.svg] [--data FILE.csv (header Y,X1,X2)] [--dot FILE]";

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--compact") a.compact = true;
    else if (examples::is_help(arg)) a.help = true;
    else if ((arg == "--plot" || arg == "--data" || arg == "--dot") && (!has_value || argv[i + 1][0] == '\0'))
      throw std::invalid_argument(fmt::format("{} needs a file name\n{}", arg, kUsage));
    else if (arg == "--plot") a.plot = argv[++i];
    else if (arg == "--data") a.data = argv[++i], a.slides = false;
    else if (arg == "--dot") a.dot = argv[++i];
    else throw std::invalid_argument(fmt::format("unknown argument '{}'\n{}", arg, kUsage));
  }
  // The CSV goes beside the plot, with .csv for its extension: it must not be the plot itself.
  if (!a.plot.empty() && std::filesystem::path(a.plot).replace_extension(".csv") == a.plot)
    throw std::invalid_argument(fmt::format(
        "--plot {}: the loss table is written beside the plot as FILE.csv, so the plot cannot be a .csv "
        "(e.g. --plot loss.svg)\n{}",
        a.plot, kUsage));
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  if (args.help) {
    fmt::print("{}\n", kUsage);
    return 0;
  }
  const Data d = load(args.data, args.slides, !args.compact);
  ScalarNet net;
  if (!args.dot.empty()) {  // the picture of observation 1's graph, after its backward
    ScalarNet fresh;
    const Observation o = lecture::forward(fresh, d.z[0][0], d.z[0][1], d.y[0]);
    o.half_cost.backward({.retain_graph = true});
    write_dot(args.dot, o.half_cost, {.title = "observation 1: C = 1/2 (Output - Y)^2"});
    fmt::print("wrote {} (render: dot -Tsvg {} -o observation1.svg)\n\n", args.dot, args.dot);
  }
  if (!args.compact) {
    fmt::print("Step 1b: design: 2 input nodes, 3 hidden nodes, 1 output node, sigmoid everywhere, dense.\n\n");
    print_weights(net, "Step 2: initialise (the slides' weights and biases)");
    fmt::print("Steps 3 and 4: forward propagation and cost\n");
    print_forward(net, d, true);
    if (d.slides) fmt::print("  (slides, observation 1: H 0.65 0.49 0.88 -> Output 0.18)\n");
    fmt::print("\n");
    print_backprop(net, d);
    print_first_update(net, d);
  }

  // Repeat 3-6 until the summed-up error is below 0.001: the Scalar network...
  fmt::print("Training with Scalars (neuron by neuron) until sum (Output - Y)^2 < {}, learning rate {}\n\n", kGoal, kLearningRate);
  std::vector<double> history;
  std::size_t epochs = 0;
  for (std::size_t epoch = 1; epoch <= kMaxEpochs; ++epoch) {
    const bool snapshot = !args.compact && is_snapshot(epoch);
    if (snapshot) {
      fmt::print("After {} epoch{} (forward of that epoch; weights after its update)\n", epoch, epoch == 1 ? "" : "s");
      print_forward(net, d, false);
    }
    const double error = scalar_epoch(net, d);
    history.push_back(error);
    epochs = epoch;
    if (snapshot) print_weights(net, "");
    if (error < kGoal) break;
  }
  const bool reached = history.back() < kGoal;
  fmt::print("After {} epochs ({}): summed-up error {:.6g}\n", epochs,
             reached ? "goal reached: summed-up error < 0.001" : "maximum number of epochs reached", history.back());
  print_weights(net, "");

  // ... and the same network from nn::Dense + nn::Sigmoid + MSELoss + SGD, trained by optim::fit.
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).dtype(DType::float64).init(
          nn::Init::values({{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}})).bias_init(nn::Init::values({0.1, -0.2, 0.4}))),
      std::make_shared<nn::Sigmoid>(),
      std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).dtype(DType::float64).init(
          nn::Init::values({{-0.6, -0.6, -0.3}})).bias_init(nn::Init::values({-0.6}))),
      std::make_shared<nn::Sigmoid>());
  std::vector<double> xs, ys;
  for (std::size_t i = 0; i < d.y.size(); ++i) {
    xs.insert(xs.end(), d.z[i].begin(), d.z[i].end());
    ys.push_back(d.y[i]);
  }
  const int64_t n = static_cast<int64_t>(d.y.size());
  const Tensor x = from_vector(xs, {n, 2}, DType::float64), y = from_vector(ys, {n, 1}, DType::float64);
  // The slides' updates sum the per-observation backprop errors: the gradient of 1/2 * sum.
  const nn::MSELoss criterion(nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true));
  optim::SGD sgd(model->parameters(), optim::SGDOptions(kLearningRate));
  const auto result = optim::fit(sgd, [&] { return criterion(model->forward(x), y); },
                                 optim::FitOptions().max_epochs(kMaxEpochs).loss_below(kGoal / 2).quiet());
  fmt::print("The same network from nn::Dense + nn::Sigmoid + MSELoss(sum, 1/2) + SGD({}):\n{}\n", kLearningRate,
             model->to_string());
  // Enough digits to show a loss just below the goal as below it (0.00049996, not 0.0005).
  fmt::print("  stopped after {} epochs: {} (1/2 sum (Output - Y)^2 = {:.6g}, goal < {})\n", result.epochs,
             describe(result.reason), result.losses.back(), kGoal / 2);

  const auto named = model->named_parameters();
  const std::vector<double> w1 = named[0].second.to_vector(), b1 = named[1].second.to_vector(),
                            w2 = named[2].second.to_vector(), b2 = named[3].second.to_vector();
  double worst = std::abs(b2[0] - net.b2.value());
  for (int h = 0; h < 3; ++h) {
    worst = std::max({worst, std::abs(w1[h * 2 + 0] - net.w1[0][h].value()), std::abs(w1[h * 2 + 1] - net.w1[1][h].value()),
                      std::abs(b1[h] - net.b1[h].value()), std::abs(w2[h] - net.w2[h].value())});
  }
  fmt::print("  largest difference to the Scalar network's weights: {:.3g} ({})\n", worst,
             worst < 1e-9 && result.epochs == epochs ? "they agree" : "they DISAGREE");

  if (!args.plot.empty()) {
    std::filesystem::path svg = args.plot, csv = svg;
    csv.replace_extension(".csv");
    optim::write_loss_svg(svg, history, {.title = "lecture network: summed-up error per epoch"});
    optim::write_loss_csv(csv, history);
    fmt::print("wrote {} and {}\n", svg.string(), csv.string());
  }
  return worst < 1e-9 && result.epochs == epochs ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "lecture: " << e.what() << "\n";
  return 2;
}
