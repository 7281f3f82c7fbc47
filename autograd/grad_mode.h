#pragma once
// Recording switch shared by Scalar and Tensor: while a NoGradGuard is alive on a thread, no op on
// that thread is recorded and every result is a constant (as torch::NoGradGuard).
//
//   {
//     chainrule::NoGradGuard no_grad;
//     auto y = w * x;          // y.requires_grad() == false, nothing recorded
//   }
#include <cstdint>

namespace chainrule {

namespace detail {
// The per-thread switches every recorded op reads, in one word so that the common case (recording
// on, nothing checked or tracked) costs one test per op: zero means "record plainly".
enum ThreadModeBit : uint32_t {
  kNoGrad = 1,          // a NoGradGuard is alive
  kAnomaly = 2,         // anomaly mode is on (autograd/anomaly.h)
  kTrackLocations = 4,  // Scalar ops record their source location (TrackLocationsGuard)
};
inline constinit thread_local uint32_t thread_mode = 0;
inline void set_thread_mode(ThreadModeBit bit, bool on) { thread_mode = on ? thread_mode | bit : thread_mode & ~bit; }
}  // namespace detail

class GradMode {
 public:
  static bool enabled() { return !(detail::thread_mode & detail::kNoGrad); }
  static void set_enabled(bool on) { detail::set_thread_mode(detail::kNoGrad, !on); }
};

// Turns recording off for its lifetime and restores the previous state afterwards.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns recording on (or to `on`) for its lifetime, e.g. inside a backward that records.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : previous_(GradMode::enabled()) { GradMode::set_enabled(on); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Options shared by every backward entry point.
struct BackwardOptions {
  bool retain_graph = false;  // keep the graph so that backward can run through it again
  bool create_graph = false;  // record the backward pass itself (implies retain_graph)
};

// Options of the functional grad(outputs, inputs, ...) for Scalars and Tensors.
struct GradOptions {
  bool retain_graph = false;  // keep the graph for another sweep
  bool create_graph = false;  // record the sweep: the gradients can be differentiated again
  bool allow_unused = false;  // an input the outputs do not depend on gets 0 instead of an error
};

}  // namespace chainrule
