#pragma once
// Anomaly mode: while a DetectAnomalyGuard is alive on a thread, every forward result and every
// gradient computed on that thread is checked for NaN and infinity, and the first bad one throws an
// AnomalyError naming the op and the source line where it was recorded (for gradients: which op's
// backward produced it). Off by default; when off it costs one predictable branch per op.
//
//   {
//     chainrule::DetectAnomalyGuard anomaly;
//     auto y = log(x);   // x == 0 -> AnomalyError: "log produced -inf ... recorded at model.cpp:12"
//   }
#include <stdexcept>
#include <string>

#include "autograd/where.h"

namespace chainrule {

class AnomalyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AnomalyMode {
 public:
  static bool enabled() { return depth_ > 0; }

 private:
  friend class DetectAnomalyGuard;
  static inline thread_local int depth_ = 0;
};

class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() { ++AnomalyMode::depth_; }
  ~DetectAnomalyGuard() { --AnomalyMode::depth_; }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;
};

// "file.cpp:12" for messages.
std::string to_string(const Where& where);

namespace detail {
// Throws AnomalyError: "<phase> of '<op>' (recorded at <where>) produced <what>".
[[noreturn]] void throw_anomaly(const char* phase, std::string_view op, const Where& where, double value,
                                const std::string& detail = {});
}  // namespace detail

}  // namespace chainrule
