#pragma once
// Workloads `scalar_sum` and `scalar_logsumexp`: the gradient of a scalar objective of N = 16384
// inputs, the shapes of ADBench's (github.com/JamesYang007/ADBenchmark) `sum_iter` and
// `log_sum_exp`, written once below as templates over the number type:
//   sum_iter:    f(x) = sum_i x_i, accumulated one element at a time (T s = 0; s += x_i), as
//                ADBench's SumIterFuncBase; gradient 1 everywhere.
//   log_sum_exp: f(x) = log(sum_i exp(x_i)), without the max shift, as ADBench's
//                LogSumExpFuncBase (log(x.array().exp().sum())); gradient exp(x_i) / sum_j exp(x_j).
//                The inputs are in [-1, 1), so nothing overflows.
// The unit is ADBench's: gradient time / function time. `handwritten` times the function alone, in
// plain doubles (the denominator); every other system times a whole gradient evaluation at x (set
// the inputs, record f, sweep back, read the N partials), so its "vs handwritten" ratio is the
// figure. The agreement check compares f and all N partials (handwritten's are the closed forms).
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "bench/harness.h"

namespace chainrule::bench::objectives {

inline constexpr int kN = 16384;
inline constexpr double kRelTol = 1e-12;

enum class Objective { sum_iter, log_sum_exp };

template <class T>
T sum_iter(const std::vector<T>& x) {
  T s = 0.0;
  for (const T& xi : x) s += xi;
  return s;
}

template <class T>
T log_sum_exp(const std::vector<T>& x) {
  using std::exp, std::log;
  T s = 0.0;
  for (const T& xi : x) s += exp(xi);
  return log(s);
}

template <class T>
T evaluate(Objective objective, const std::vector<T>& x) {
  return objective == Objective::sum_iter ? sum_iter(x) : log_sum_exp(x);
}

inline std::string workload_name(Objective objective) {
  return objective == Objective::sum_iter ? "scalar_sum" : "scalar_logsumexp";
}

// The N inputs, uniform in [-1, 1), the same for every system.
inline const std::vector<double>& inputs() {
  static const std::vector<double> x = uniform_numbers(kN, -1.0, 1.0, 16384);
  return x;
}

// A system's gradient. Grad must provide:
//   Grad(Objective, const std::vector<double>& x)
//   double run()                          one evaluation at x; returns f (handwritten: f only)
//   std::vector<double> gradient() const  the partials of the last run() (handwritten: closed form)
template <class Grad>
[[gnu::noinline]] double timed_run(Grad& g) {
  return g.run();
}

// check_in_child: see System::check_in_child.
template <class Grad>
bool add(const std::string& system, bool check_in_child = false) {
  for (Objective objective : {Objective::sum_iter, Objective::log_sum_exp}) {
    auto check = [objective] {
      Grad g(objective, inputs());
      Outcome out;
      // Twice, so that whatever a system resets between evaluations is checked too.
      g.run();
      out.emplace_back("f", g.run());
      append_values(out, "df/dx", g.gradient());
      return out;
    };
    auto run = [objective](benchmark::State& state) {
      Grad g(objective, inputs());
      for (auto _ : state) {
        double f = timed_run(g);
        benchmark::DoNotOptimize(f);
      }
      state.SetItemsProcessed(state.iterations());
    };
    add_system({.workload = workload_name(objective), .name = system, .check = check, .run = run,
                .check_in_child = check_in_child});
  }
  return true;
}

}  // namespace chainrule::bench::objectives
