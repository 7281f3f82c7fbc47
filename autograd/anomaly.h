#pragma once
// Anomaly mode: while a DetectAnomalyGuard is alive on a thread, every forward result and every
// gradient computed on that thread is checked for NaN and infinity, and the first bad one throws an
// AnomalyError naming the op and the source line where it was recorded (for gradients: which op's
// backward produced it). Off by default; when off it costs one predictable branch per op.
// Stricter than PyTorch's detect_anomaly, which flags NaN only: an infinite gradient that the
// plain sweep would carry to a finite answer (sqrt at 0 under relu's zero) throws here too.
//
//   {
//     chainrule::DetectAnomalyGuard anomaly;
//     auto y = log(x);   // x == 0 -> AnomalyError:
//                        //   "anomaly: the forward of 'log' (recorded at model.cpp:12) produced -inf"
//   }
#include <stdexcept>
#include <string>
#include <string_view>

#include "autograd/grad_mode.h"
#include "autograd/where.h"

namespace chainrule {

class AnomalyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AnomalyMode {
 public:
  static bool enabled() { return detail::thread_mode & detail::kAnomaly; }

 private:
  friend class DetectAnomalyGuard;
  static inline constinit thread_local int depth_ = 0;
};

class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() { detail::set_thread_mode(detail::kAnomaly, ++AnomalyMode::depth_ > 0); }
  ~DetectAnomalyGuard() { detail::set_thread_mode(detail::kAnomaly, --AnomalyMode::depth_ > 0); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;
};

// "file.cpp:12" for messages.
std::string to_string(const Where& where);

namespace detail {
// Throws AnomalyError: "<phase> of '<op>' (recorded at <where>) produced <what>".
[[noreturn]] void throw_anomaly(const char* phase, std::string_view op, const Where& where, double value,
                                const std::string& detail = {});

// Re-throws an anomaly raised by an op inside the backward rule of `op` as an anomaly of that
// backward: "the backward of 'sqrt' (recorded at model.cpp:12) produced a non-finite value: inside
// it, the forward of 'div' ... produced inf". An anomaly that already names a backward passes as is.
[[noreturn]] void rethrow_in_backward(std::string_view op, const Where& where, const AnomalyError& inner);

// Runs `rule`, the backward of `op` recorded at `where`. A rule computes with ops that check their
// own results under anomaly mode; without this, sqrt's backward at 0 would be reported as "the
// forward of 'div' in ops.h" instead of as the backward of the sqrt the user wrote.
template <class Rule>
decltype(auto) run_backward_rule(std::string_view op, const Where& where, Rule&& rule) {
  if (!AnomalyMode::enabled()) return rule();
  try {
    return rule();
  } catch (const AnomalyError& e) {
    rethrow_in_backward(op, where, e);
  }
}
}  // namespace detail

}  // namespace chainrule
