// The harness: the registry, the agreement check and the registration of the timed benchmarks.
#include "bench/harness.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>

namespace chainrule::bench {
namespace {

struct Registry {
  std::vector<Workload> workloads;
  std::vector<System> systems;
  std::vector<std::pair<std::string, std::function<std::string(int)>>> thread_setters;
};
Registry& registry() {
  static Registry r;  // function-local: safe to use from other files' static initialisers
  return r;
}

// The order of workloads in the run (issue 5's list; unknown names go last, alphabetically).
int workload_rank(const std::string& name) {
  static const std::vector<std::string> order = {"lecture",          "tinyop", "mlp_b128", "mlp_b8",
                                                 "mlp_b1",           "matmul", "scalar_sum",
                                                 "scalar_logsumexp", "memory"};
  const auto it = std::find(order.begin(), order.end(), name);
  return static_cast<int>(it - order.begin());
}

int system_rank(const std::string& name) {
  const auto& order = system_order();
  const auto it = std::find(order.begin(), order.end(), name);
  return static_cast<int>(it - order.begin());
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Empty when `got` agrees with `want`; otherwise the first difference, ready for SkipWithError.
// `max_rel` receives the largest scaled difference seen.
std::string compare(const Outcome& want, const Outcome& got, double rel_tol, const std::string& reference,
                    double& max_rel) {
  max_rel = 0.0;
  if (want.size() != got.size())
    return "reports " + std::to_string(got.size()) + " numbers, " + reference + " reports " +
           std::to_string(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].first != got[i].first)
      return "reports '" + got[i].first + "' where " + reference + " reports '" + want[i].first + "'";
    const double a = want[i].second, b = got[i].second;
    const double scaled = std::abs(a - b) / std::max({1.0, std::abs(a), std::abs(b)});
    if (!(scaled <= rel_tol))  // also catches NaN
      return "disagrees with " + reference + ": " + got[i].first + " = " + format_number(b) + ", " +
             reference + " has " + format_number(a) + " (scaled difference " + format_number(scaled) +
             " > tolerance " + format_number(rel_tol) + ")";
    max_rel = std::max(max_rel, scaled);
  }
  return {};
}

Outcome run_check(const System& s, std::string& error) {
  try {
    return s.check();
  } catch (const std::exception& e) {
    error = std::string("check threw: ") + e.what();
  } catch (...) {
    error = "check threw a non-standard exception";
  }
  return {};
}

}  // namespace

bool add_workload(Workload workload) {
  registry().workloads.push_back(std::move(workload));
  return true;
}

bool add_system(System system) {
  registry().systems.push_back(std::move(system));
  return true;
}

bool add_thread_setter(std::string system, std::function<std::string(int)> set) {
  registry().thread_setters.emplace_back(std::move(system), std::move(set));
  return true;
}

const std::vector<std::string>& system_order() {
  static const std::vector<std::string> order = {"handwritten", "cblas",  "chainrule_scalar",
                                                 "chainrule_tensor", "sacado", "adolc", "libtorch"};
  return order;
}

std::vector<std::pair<std::string, std::string>> set_threads(int threads) {
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto& [system, set] : registry().thread_setters) lines.emplace_back(system, set(threads));
  return lines;
}

int check_and_register(std::FILE* log) {
  Registry& r = registry();
  std::sort(r.workloads.begin(), r.workloads.end(), [](const Workload& a, const Workload& b) {
    return std::pair(workload_rank(a.name), a.name) < std::pair(workload_rank(b.name), b.name);
  });
  std::stable_sort(r.systems.begin(), r.systems.end(), [](const System& a, const System& b) {
    return std::pair(system_rank(a.name), a.name) < std::pair(system_rank(b.name), b.name);
  });

  int disagreeing = 0;
  for (const Workload& w : r.workloads) {
    std::fprintf(log, "%s: %s\n", w.name.c_str(), w.description.c_str());
    const auto ref = std::find_if(r.systems.begin(), r.systems.end(), [&](const System& s) {
      return s.workload == w.name && s.name == w.reference;
    });
    std::string ref_error = ref == r.systems.end() ? "the reference system is not built" : "";
    const Outcome want = ref == r.systems.end() ? Outcome{} : run_check(*ref, ref_error);
    if (!ref_error.empty()) ref_error = "reference " + w.reference + ": " + ref_error;

    for (const System& s : r.systems) {
      if (s.workload != w.name) continue;
      std::string error = ref_error;
      double max_rel = 0.0;
      if (error.empty() && &s != &*ref) {
        const Outcome got = run_check(s, error);
        if (error.empty()) error = compare(want, got, w.rel_tol, w.reference, max_rel);
      }
      const std::string name = w.name + "/" + s.name;
      if (!error.empty()) {
        ++disagreeing;
        std::fprintf(log, "  %-28s FAILS the agreement check: %s\n", name.c_str(), error.c_str());
      } else if (&s == &*ref) {
        std::fprintf(log, "  %-28s reference (%zu numbers)\n", name.c_str(), want.size());
      } else {
        std::fprintf(log, "  %-28s agrees: %zu numbers, largest scaled difference %.1e (tolerance %.0e)\n",
                     name.c_str(), want.size(), max_rel, w.rel_tol);
      }
      auto body = [run = s.run, error](benchmark::State& state) {
        if (!error.empty()) {
          state.SkipWithError(error.c_str());
          return;
        }
        run(state);
      };
      // CPU time of the whole process (every thread a system starts counts) is the primary
      // measure: this machine is shared, and wall time also counts time spent descheduled. The
      // JSON has both; bench/ratios.py --metric real_time shows wall time.
      benchmark::RegisterBenchmark(name.c_str(), body)->MeasureProcessCPUTime();
    }
  }
  std::fflush(log);
  return disagreeing;
}

}  // namespace chainrule::bench
