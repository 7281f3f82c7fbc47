#include "optim/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/text_file.h"

namespace chainrule::optim {
namespace {

void check_histories(const char* function, const std::vector<double>& losses, const std::vector<double>& validation) {
  if (losses.empty()) throw std::invalid_argument(fmt::format("{}: losses is empty; nothing to write", function));
  if (!validation.empty() && validation.size() != losses.size())
    throw std::invalid_argument(fmt::format("{}: {} training losses but {} validation losses; expected equal lengths",
                                            function, losses.size(), validation.size()));
}

struct Point {
  double epoch;
  double value;
};

std::vector<Point> finite_points(const std::vector<double>& values, std::size_t& skipped) {
  std::vector<Point> points;
  points.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) {
      points.push_back({static_cast<double>(i + 1), values[i]});
    } else {
      ++skipped;
    }
  }
  return points;
}

// Min/max per bucket rather than every k-th point: a stride would silently drop the spikes
// that are often the reason to look at a loss curve.
std::vector<Point> downsample(const std::vector<Point>& points, std::size_t max_points) {
  if (points.size() <= max_points) return points;
  const std::size_t buckets = max_points / 2;
  std::vector<Point> kept;
  kept.reserve(max_points);
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = b * points.size() / buckets, end = (b + 1) * points.size() / buckets;
    if (begin == end) continue;
    std::size_t lo = begin, hi = begin;
    for (std::size_t i = begin; i < end; ++i) {
      if (points[i].value < points[lo].value) lo = i;
      if (points[i].value > points[hi].value) hi = i;
    }
    kept.push_back(points[std::min(lo, hi)]);
    if (lo != hi) kept.push_back(points[std::max(lo, hi)]);
  }
  return kept;
}

// The 1-2-5 series: the smallest of 1, 2, 5, 10 times a power of ten that is >= raw.
double nice_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / power;
  return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * power;
}

struct Tick {
  double value;
  std::string label;
};

std::string linear_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0.0;  // avoid "-0" and 1e-17 from accumulated rounding
  if (step >= 1.0 && std::abs(v) < 1e7) return fmt::format("{:.0f}", v);
  if (step < 1.0 && step >= 1e-6) {
    const int decimals = static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    return fmt::format("{:.{}f}", v, decimals);
  }
  return fmt::format("{:g}", v);
}

std::vector<Tick> linear_ticks(double lo, double hi, double min_step = 0.0) {
  const double step = std::max(nice_step((hi - lo) / 5.0), min_step);
  // A step within rounding of the values cannot count from lo to hi (past 2^53, k += 1 leaves k
  // as it is, and the loop never ended): the two ends alone.
  if (!(step > 0 && std::isfinite(step))) return {};  // subnormal ranges: 10^-324 is 0
  if (!(std::max(std::abs(lo), std::abs(hi)) / step < 1e12))
    return {{lo, fmt::format("{:g}", lo)}, {hi, fmt::format("{:g}", hi)}};
  std::vector<Tick> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1.0)
    ticks.push_back({k * step, linear_label(k * step, step)});
  return ticks;
}

// Decades first; if fewer than 3 fall in range, add 2 and 5 (then 1..9) per decade; if the
// range is narrower than that, fall back to linear ticks placed on the log axis. The axis runs
// from 10^a to 10^b (a and b finite: positive finite losses and a padding); a tick's value must be
// a positive finite double (10^-330 underflows to 0, 10^310 overflows).
std::vector<Tick> log_ticks(double a, double b) {
  const double lo = std::pow(10.0, a), hi = std::pow(10.0, b);
  const int first = static_cast<int>(std::floor(a)), last = static_cast<int>(std::ceil(b));
  const int stride = std::max(1, (last - first) / 8);  // at most ~9 decade labels
  const std::vector<std::vector<double>> mantissas = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  for (const auto& set : mantissas) {
    std::vector<Tick> ticks;
    for (int e = first; e <= last; ++e) {
      if (set.size() == 1 && (e - first) % stride != 0) continue;
      for (double m : set) {
        const double v = m * std::pow(10.0, e);
        if (v > 0 && std::isfinite(v) && v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
          ticks.push_back({v, fmt::format("{:g}", v)});
      }
    }
    if (ticks.size() >= 3 || (set.size() == 1 && ticks.size() >= 2 && last - first > 2)) return ticks;
  }
  std::vector<Tick> ticks = linear_ticks(lo, hi);
  std::erase_if(ticks, [](const Tick& t) { return !(t.value > 0 && std::isfinite(t.value)); });  // a log axis's
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Plot-area geometry and the data-to-pixel mapping of both axes.
struct Frame {
  double left, top, right, bottom;
  double x_lo, x_hi, y_lo, y_hi;  // y in log10 units when log
  bool log;
  double px(double epoch) const { return left + (epoch - x_lo) / (x_hi - x_lo) * (right - left); }
  double py(double value) const {
    const double v = log ? std::log10(value) : value;
    return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top);
  }
};

// One series; `style` carries its colour and dash pattern (the legend reuses it).
std::string polyline(const std::vector<Point>& points, const Frame& f, const char* cls, const char* color,
                     const std::string& style) {
  if (points.size() == 1)
    return fmt::format("<circle class=\"{}\" cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"/>\n", cls,
                       f.px(points[0].epoch), f.py(points[0].value), color);
  std::string out = fmt::format("<polyline class=\"{}\" fill=\"none\" {} points=\"", cls, style);
  for (std::size_t i = 0; i < points.size(); ++i)
    out += fmt::format("{}{:.2f},{:.2f}", i == 0 ? "" : " ", f.px(points[i].epoch), f.py(points[i].value));
  return out + "\"/>\n";
}

std::string render_svg(const std::vector<double>& losses, const std::vector<double>& validation,
                       const LossPlotOptions& o) {
  std::size_t skipped = 0;
  const std::vector<Point> train = finite_points(losses, skipped);
  const std::vector<Point> valid = finite_points(validation, skipped);
  if (train.empty() && valid.empty())
    throw std::invalid_argument("write_loss_svg: no finite loss value to plot (all are NaN or infinite)");

  double lo = INFINITY, hi = -INFINITY;
  for (const auto* series : {&train, &valid})
    for (const Point& p : *series) lo = std::min(lo, p.value), hi = std::max(hi, p.value);
  const bool log = o.log_y && lo > 0.0;
  // A linear axis needs hi - lo (and its padding) as a finite double.
  if (!log && !(std::isfinite(1.2 * (hi - lo)) && std::isfinite(1.2 * hi) && std::isfinite(1.2 * lo)))
    throw std::invalid_argument(fmt::format(
        "write_loss_svg: losses from {} to {} are too far apart or too large to plot on a linear axis (its "
        "range and padding must be finite doubles)",
        lo, hi));

  Frame f{78.0, 44.0, o.width - 20.0, o.height - 62.0, 1.0, std::max(2.0, static_cast<double>(losses.size())),
          0.0, 0.0, log};
  if (losses.size() == 1) f.x_lo = 0.0;
  // Losses within rounding of each other (a model stuck at ln 2, one ulp apart) are drawn as one
  // constant value: a range that small has no ticks to count.
  const bool flat = hi - lo <= 1e-9 * std::max(std::abs(lo), std::abs(hi));
  if (log) {
    const double a = std::log10(lo), b = std::log10(hi), pad = flat ? 0.5 : 0.05 * (b - a);
    f.y_lo = a - pad, f.y_hi = b + pad;
  } else {
    const double pad = flat ? (lo == 0.0 ? 1.0 : 0.1 * std::abs(lo)) : 0.05 * (hi - lo);
    f.y_lo = lo - pad, f.y_hi = hi + pad;
  }
  const std::vector<Tick> yt =
      log ? log_ticks(f.y_lo, f.y_hi) : linear_ticks(f.y_lo, f.y_hi);
  const std::vector<Tick> xt = linear_ticks(f.x_lo, f.x_hi, 1.0);

  const double cx = (f.left + f.right) / 2, cy = (f.top + f.bottom) / 2;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text class=\"title\" x=\"{2:.1f}\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">{3}</text>\n",
      o.width, o.height, cx, xml_escape(o.title));

  svg += "<g class=\"grid\" stroke=\"#e4e4e4\">\n";
  for (const Tick& t : yt)
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.2f}\" x2=\"{:.1f}\" y2=\"{:.2f}\"/>\n", f.left, f.py(t.value),
                       f.right, f.py(t.value));
  for (const Tick& t : xt)
    svg += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.1f}\" x2=\"{:.2f}\" y2=\"{:.1f}\"/>\n", f.px(t.value), f.top,
                       f.px(t.value), f.bottom);
  svg += "</g>\n";
  svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n",
                     f.left, f.top, f.right - f.left, f.bottom - f.top);

  svg += "<g class=\"y-ticks\" text-anchor=\"end\">\n";
  for (const Tick& t : yt)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.2f}\">{}</text>\n", f.left - 6, f.py(t.value) + 4, t.label);
  svg += "</g>\n<g class=\"x-ticks\" text-anchor=\"middle\">\n";
  for (const Tick& t : xt)
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.1f}\">{}</text>\n", f.px(t.value), f.bottom + 18, t.label);
  svg += "</g>\n";
  svg += fmt::format("<text class=\"x-title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">epoch</text>\n", cx,
                     f.bottom + 38);
  svg += fmt::format(
      "<text class=\"y-title\" x=\"18\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0:.1f})\">"
      "loss{1}</text>\n",
      cy, log ? " (log scale)" : "");

  const char *train_color = "#1f77b4", *valid_color = "#ff7f0e";
  const std::string train_style = fmt::format("stroke=\"{}\" stroke-width=\"1.5\"", train_color);
  const std::string valid_style = fmt::format("stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"", valid_color);
  if (!train.empty()) svg += polyline(downsample(train, o.max_points), f, "loss", train_color, train_style);
  if (!valid.empty())
    svg += polyline(downsample(valid, o.max_points), f, "validation_loss", valid_color, valid_style);

  if (!validation.empty()) {
    const double lx = f.right - 120, ly = f.top + 18;
    svg += fmt::format(
        "<g class=\"legend\">\n"
        "<rect x=\"{0:.1f}\" y=\"{1:.1f}\" width=\"110\" height=\"44\" fill=\"white\" stroke=\"#999\"/>\n"
        "<line x1=\"{2:.1f}\" y1=\"{3:.1f}\" x2=\"{4:.1f}\" y2=\"{3:.1f}\" {6}/>\n"
        "<text x=\"{5:.1f}\" y=\"{7:.1f}\">training</text>\n"
        "<line x1=\"{2:.1f}\" y1=\"{8:.1f}\" x2=\"{4:.1f}\" y2=\"{8:.1f}\" {9}/>\n"
        "<text x=\"{5:.1f}\" y=\"{10:.1f}\">validation</text>\n</g>\n",
        lx, ly - 14, lx + 8, ly, lx + 32, lx + 38, train_style, ly + 4, ly + 20, valid_style, ly + 24);
  }

  std::string note;
  if (skipped > 0) note = fmt::format("{} non-finite value{} (NaN or inf) not shown", skipped, skipped == 1 ? "" : "s");
  if (o.log_y && !log) note += std::string(note.empty() ? "" : "; ") + "linear scale: some losses are <= 0";
  if (!note.empty())
    svg += fmt::format("<text class=\"note\" x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#b00\">{}</text>\n", f.left,
                       static_cast<double>(o.height) - 8, xml_escape(note));
  return svg + "</svg>\n";
}

}  // namespace

void write_loss_csv(const std::filesystem::path& path, const std::vector<double>& losses,
                    const std::vector<double>& validation_losses) {
  check_histories("write_loss_csv", losses, validation_losses);
  const bool with_validation = !validation_losses.empty();
  std::string text = with_validation ? "epoch,loss,validation_loss\n" : "epoch,loss\n";
  for (std::size_t i = 0; i < losses.size(); ++i) {
    text += fmt::format("{},{}", i + 1, losses[i]);
    if (with_validation) text += fmt::format(",{}", validation_losses[i]);
    text += '\n';
  }
  detail::write_text_file(path, text, "write_loss_csv");
}

void write_loss_svg(const std::filesystem::path& path, const std::vector<double>& losses,
                    const LossPlotOptions& options, const std::vector<double>& validation_losses) {
  check_histories("write_loss_svg", losses, validation_losses);
  if (options.width < 200 || options.height < 150)
    throw std::invalid_argument(fmt::format("write_loss_svg: image size {}x{} is too small; expected at least 200x150",
                                            options.width, options.height));
  if (options.max_points < 2)
    throw std::invalid_argument(fmt::format("write_loss_svg: max_points must be >= 2, got {}", options.max_points));
  detail::write_text_file(path, render_svg(losses, validation_losses, options), "write_loss_svg");
}

}  // namespace chainrule::optim
