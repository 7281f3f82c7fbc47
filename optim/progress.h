// A progress reporter for training loops: epoch, loss, epochs per second and time left.
//
//   optim::Progress progress(8000);                 // Auto: a bar on a terminal, lines in a log
//   for (std::size_t epoch = 1; epoch <= 8000; ++epoch) {
//     double loss = train_one_epoch();
//     progress.update(epoch, loss);
//     if (loss < 0.001) { progress.finish("goal reached: summed-up error < 0.001"); break; }
//   }
//   progress.finish("maximum number of epochs reached");   // no-op if already finished
//
// Bar mode (a terminal) redraws one line in place with '\r', at most 10 times per second,
// cut to the terminal's width:
//   [#######.............] 3000/8000  37% loss 0.0213 2512 epochs/s ETA 0:02
// Lines mode (a file or pipe) prints plain lines, every `every_n` epochs or at most once per
// `interval_seconds`:
//   epoch 3000/8000 loss 0.0213 (2512 epochs/s, ETA 0:02)
// finish() ends either with a summary line:
//   finished at epoch 8000/8000, loss 0.000998, 3.2 s (2500 epochs/s): goal reached: ...
// Quiet prints nothing at all.
//
// Rates are averages since construction (epochs done / seconds elapsed); ETA is the remaining
// epochs at that rate, printed as m:ss or h:mm:ss. The reporter only writes to `out`; it never
// throws from the destructor, which ends an unfinished bar line with a newline.
#pragma once

#include <cstddef>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>

namespace chainrule::optim {

enum class ProgressMode {
  Auto,   // Bar if `out` is std::cout/std::cerr/std::clog attached to a terminal, else Lines
  Bar,    // one line redrawn in place with '\r'
  Lines,  // plain lines, suitable for log files and CI output
  Quiet,  // nothing
};

struct ProgressOptions {
  ProgressMode mode = ProgressMode::Auto;
  // Destination; must outlive the Progress. Not owned.
  std::ostream* out = &std::cerr;
  // Lines mode: print every `every_n` epochs (epoch % every_n == 0). 0 = time-based instead,
  // at most one line per `interval_seconds`, always including the first update.
  std::size_t every_n = 0;
  double interval_seconds = 1.0;
  // Bar mode: minimum seconds between redraws (0.1 = at most 10 per second). The last epoch
  // is always drawn.
  double redraw_seconds = 0.1;
  // Seconds from an arbitrary origin, non-decreasing. Empty = std::chrono::steady_clock.
  // Tests inject a fake clock to make the output deterministic.
  std::function<double()> clock = {};
};

class Progress {
 public:
  // total_epochs = 0 means unknown: no "/total", percentage, bar or ETA.
  // Throws std::invalid_argument for a null `out` (unless Quiet) or negative intervals.
  explicit Progress(std::size_t total_epochs, ProgressOptions options = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports that `epoch` epochs are done (1-based; 0 may report the loss before training) with
  // the given loss. Epochs must increase from call to call and not exceed total_epochs (if
  // known): otherwise std::invalid_argument. After finish(): std::logic_error.
  void update(std::size_t epoch, double loss);

  // Draws the final state and prints the summary line with `reason` (why training stopped).
  // Calling it again does nothing.
  void finish(std::string_view reason);

  // The mode in effect (Auto resolved to Bar or Lines).
  ProgressMode mode() const { return mode_; }

 private:
  double now() const;
  std::string status_line(bool bar) const;
  void draw_bar();

  std::size_t total_;
  ProgressOptions options_;
  ProgressMode mode_;
  double start_ = 0.0;
  bool any_update_ = false;
  bool finished_ = false;
  std::size_t epoch_ = 0;
  double loss_ = 0.0;
  double last_print_ = 0.0;     // time of the last printed line or bar
  std::size_t bar_width_ = 0;   // length of the last bar line, to blank leftovers
  std::size_t columns_ = 0;     // terminal width in Bar mode on a terminal; 0 = unknown
  double elapsed_ = 0.0;        // at the latest update
};

// Formats seconds as m:ss below an hour and h:mm:ss above (e.g. 75 -> "1:15", 3725 -> "1:02:05").
// Negative or non-finite input gives "?".
std::string format_duration(double seconds);

}  // namespace chainrule::optim
