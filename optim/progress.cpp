#include "optim/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace chainrule::optim {
namespace {

// Only the standard streams have a known file descriptor; any other stream (a file, a string
// stream) is treated as not a terminal. Returns the terminal's fd, or -1.
int terminal_fd(const std::ostream* out) {
  const int fd = out == &std::cout ? STDOUT_FILENO : (out == &std::cerr || out == &std::clog) ? STDERR_FILENO : -1;
  return fd >= 0 && ::isatty(fd) == 1 ? fd : -1;
}

// A line wider than the terminal wraps, and '\r' then only returns to the start of the last
// wrapped row, smearing the bar down the screen; so the bar is cut to the terminal's width.
std::size_t terminal_columns(int fd) {
  winsize ws{};
  if (fd < 0 || ::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  return ws.ws_col;
}

constexpr std::size_t kBarCells = 20;

}  // namespace

std::string format_duration(double seconds) {
  // Past ~292 billion years llround would not fit a long long (its result is then unspecified).
  if (!std::isfinite(seconds) || seconds < 0.0 || seconds >= 9e18) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

Progress::Progress(std::size_t total_epochs, ProgressOptions options)
    : total_(total_epochs), options_(std::move(options)), mode_(options_.mode) {
  if (mode_ != ProgressMode::Quiet && options_.out == nullptr)
    throw std::invalid_argument("Progress: ProgressOptions::out is null (use ProgressMode::Quiet for no output)");
  if (!(options_.interval_seconds >= 0.0) || !(options_.redraw_seconds >= 0.0))
    throw std::invalid_argument(fmt::format("Progress: interval_seconds ({}) and redraw_seconds ({}) must be >= 0",
                                            options_.interval_seconds, options_.redraw_seconds));
  const int fd = mode_ == ProgressMode::Quiet ? -1 : terminal_fd(options_.out);
  if (mode_ == ProgressMode::Auto) mode_ = fd >= 0 ? ProgressMode::Bar : ProgressMode::Lines;
  if (mode_ == ProgressMode::Bar) columns_ = terminal_columns(fd);
  start_ = now();
}

Progress::~Progress() {
  // Leave the terminal on a fresh line if the loop ended (or threw) without finish().
  if (mode_ == ProgressMode::Bar && !finished_ && bar_width_ > 0) {
    try {
      *options_.out << '\n' << std::flush;
    } catch (...) {
    }
  }
}

double Progress::now() const {
  if (options_.clock) return options_.clock();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string Progress::status_line(bool bar) const {
  std::string line;
  if (bar && total_ > 0) {
    const std::size_t filled = std::min(kBarCells, epoch_ * kBarCells / total_);
    line += '[' + std::string(filled, '#') + std::string(kBarCells - filled, '.') + "] ";
  }
  const double rate = elapsed_ > 0.0 ? static_cast<double>(epoch_) / elapsed_ : 0.0;
  const bool known_rate = rate > 0.0;
  const std::string eta =
      (total_ > 0 && known_rate) ? format_duration(static_cast<double>(total_ - epoch_) / rate) : std::string();
  if (bar) {
    line += total_ > 0 ? fmt::format("{}/{} {:3}%", epoch_, total_, epoch_ * 100 / total_) : fmt::format("{}", epoch_);
    line += fmt::format(" loss {:.6g}", loss_);
    if (known_rate) line += fmt::format(" {:.4g} epochs/s", rate);
    if (!eta.empty()) line += " ETA " + eta;
    return line;
  }
  line = total_ > 0 ? fmt::format("epoch {}/{} loss {:.6g}", epoch_, total_, loss_)
                    : fmt::format("epoch {} loss {:.6g}", epoch_, loss_);
  if (known_rate) line += fmt::format(" ({:.4g} epochs/s{})", rate, eta.empty() ? "" : ", ETA " + eta);
  return line;
}

void Progress::draw_bar() {
  std::string line = status_line(true);
  if (columns_ > 1 && line.size() > columns_ - 1) line.resize(columns_ - 1);
  const std::size_t width = line.size();
  // Blank what a longer previous line left behind.
  if (width < bar_width_) line += std::string(bar_width_ - width, ' ');
  *options_.out << '\r' << line << std::flush;
  bar_width_ = width;
}

void Progress::update(std::size_t epoch, double loss) {
  if (finished_) throw std::logic_error(fmt::format("Progress::update(epoch {}): called after finish()", epoch));
  if (total_ > 0 && epoch > total_)
    throw std::invalid_argument(fmt::format("Progress::update: epoch {} exceeds total_epochs {}", epoch, total_));
  if (any_update_ && epoch <= epoch_)
    throw std::invalid_argument(
        fmt::format("Progress::update: epoch {} does not follow the previous epoch {}", epoch, epoch_));
  const bool first = !any_update_;
  any_update_ = true;
  epoch_ = epoch;
  loss_ = loss;
  const double t = now();
  elapsed_ = t - start_;

  switch (mode_) {
    case ProgressMode::Quiet:
    case ProgressMode::Auto:
      return;
    case ProgressMode::Bar:
      if (first || epoch == total_ || t - last_print_ >= options_.redraw_seconds) {
        draw_bar();
        last_print_ = t;
      }
      return;
    case ProgressMode::Lines: {
      const bool due = options_.every_n > 0 ? epoch % options_.every_n == 0
                                            : first || t - last_print_ >= options_.interval_seconds;
      if (due) {
        *options_.out << status_line(false) << '\n' << std::flush;
        last_print_ = t;
      }
      return;
    }
  }
}

void Progress::finish(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  if (mode_ == ProgressMode::Quiet) return;
  const double seconds = now() - start_;
  if (mode_ == ProgressMode::Bar && any_update_) {
    draw_bar();
    *options_.out << '\n';
  }
  std::string summary;
  if (!any_update_) {
    summary = fmt::format("finished before the first epoch, {:.1f} s", seconds);
  } else {
    summary = total_ > 0 ? fmt::format("finished at epoch {}/{}, loss {:.6g}, {:.1f} s", epoch_, total_, loss_, seconds)
                         : fmt::format("finished at epoch {}, loss {:.6g}, {:.1f} s", epoch_, loss_, seconds);
    if (seconds > 0.0 && epoch_ > 0) summary += fmt::format(" ({:.4g} epochs/s)", static_cast<double>(epoch_) / seconds);
  }
  if (!reason.empty()) summary += fmt::format(": {}", reason);
  *options_.out << summary << '\n' << std::flush;
}

}  // namespace chainrule::optim
