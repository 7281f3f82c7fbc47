// Saving a loss history as CSV and as a standalone SVG line plot (open it in any browser).
//
//   std::vector<double> losses;                    // losses[i] = loss after epoch i + 1
//   ...
//   optim::write_loss_csv("loss.csv", losses);     // epoch,loss
//   optim::write_loss_svg("loss.svg", losses, {.title = "lecture network, lr 0.5"});
//   optim::write_loss_svg("loss.svg", losses, {}, validation_losses);   // two lines + legend
//
// Epochs are numbered from 1: value i of a history is plotted and written at epoch i + 1.
// Files are written in place (not atomically); errors opening or writing throw
// std::runtime_error naming the path.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace chainrule::optim {

// Writes `epoch,loss` (or `epoch,loss,validation_loss` when validation_losses is non-empty),
// one row per epoch, values in shortest round-trip form ("0.1", "1e-05"); NaN and infinity
// are written as nan / inf / -inf. Example for losses {0.5, 0.25}:
//   epoch,loss
//   1,0.5
//   2,0.25
// Throws std::invalid_argument if losses is empty or validation_losses is non-empty with a
// different length.
void write_loss_csv(const std::filesystem::path& path, const std::vector<double>& losses,
                    const std::vector<double>& validation_losses = {});

struct LossPlotOptions {
  std::string title = "training loss";
  // Logarithmic loss axis. Used only if every plotted value is > 0; otherwise the plot falls
  // back to a linear axis and says so in a note under the plot.
  bool log_y = true;
  // Image size in pixels; at least 200 x 150.
  int width = 800;
  int height = 500;
  // Longer histories are reduced to at most this many points per line (>= 2): the epochs are
  // cut into max_points / 2 equal buckets and each bucket keeps its lowest and highest value,
  // so spikes stay visible.
  std::size_t max_points = 2000;
};

// Writes an SVG line plot of the losses against the epoch: title, axes with round-number tick
// labels (decades 0.001, 0.01, ... on a log axis; steps of 1, 2 or 5 x 10^k on a linear one),
// axis titles "epoch" and "loss", the training line as one <polyline>, and, when
// validation_losses is non-empty, a second dashed <polyline> and a legend.
// NaN and infinite values are left out (neighbouring points are joined) and a note in the plot
// counts them. Throws std::invalid_argument for empty losses, a validation history of another
// length, no finite value at all, or options out of range.
void write_loss_svg(const std::filesystem::path& path, const std::vector<double>& losses,
                    const LossPlotOptions& options = {}, const std::vector<double>& validation_losses = {});

}  // namespace chainrule::optim
