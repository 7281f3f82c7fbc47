// The harness: the registry, the agreement check and the registration of the timed benchmarks.
#include "bench/harness.h"

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <tuple>

#include "autograd/tensor.h"

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

// The child writes the outcome as lines "name<TAB>value" (value as a hex float: exact), or one line
// "!<message>" when the check threw.
Outcome run_check_in_child(const System& s, std::string& error) {
  int fd[2];
  if (pipe(fd) != 0) {
    error = std::string("check: pipe failed: ") + std::strerror(errno);
    return {};
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    error = std::string("check: fork failed: ") + std::strerror(errno);
    close(fd[0]);
    close(fd[1]);
    return {};
  }
  if (pid == 0) {
    close(fd[0]);
    std::string text;
    try {
      char value[64];
      for (const auto& [name, v] : s.check()) {
        std::snprintf(value, sizeof value, "\t%a\n", v);
        text += name + value;
      }
    } catch (const std::exception& e) {
      text = std::string("!check threw: ") + e.what() + "\n";
    } catch (...) {
      text = "!check threw a non-standard exception\n";
    }
    for (size_t done = 0; done < text.size();) {
      const ssize_t n = write(fd[1], text.data() + done, text.size() - done);
      if (n <= 0) _exit(1);
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fd[1]);
  std::string text;
  char buffer[65536];
  for (ssize_t n; (n = read(fd[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = "check: the child process running it failed";
    return {};
  }
  Outcome out;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = text.find('\n', begin);
    const std::string line = text.substr(begin, end - begin);
    begin = end == std::string::npos ? text.size() : end + 1;
    if (line.starts_with('!')) {
      error = line.substr(1);
      return {};
    }
    const size_t tab = line.find('\t');
    out.emplace_back(line.substr(0, tab), std::strtod(line.c_str() + tab + 1, nullptr));
  }
  return out;
}

Outcome run_check(const System& s, std::string& error) {
  if (s.check_in_child) return run_check_in_child(s, error);
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

std::vector<double> uniform_numbers(size_t count, double low, double high, uint64_t seed) {
  Generator gen(seed);
  std::vector<double> out(count);
  for (double& v : out) v = gen.uniform(low, high);
  return out;
}

void append_values(Outcome& out, const std::string& name, const std::vector<double>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    std::string key = name;
    key += "[";
    key += std::to_string(i);
    key += "]";
    out.emplace_back(std::move(key), values[i]);
  }
}

double heap_in_use_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd);
}

namespace {
// A "VmRSS:    1234 kB" line of /proc/self/status, in bytes (0 if absent).
double proc_status_bytes(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0.0;
  char line[256];
  double kb = 0.0;
  const size_t len = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, len) == 0 && line[len] == ':') {
      kb = std::strtod(line + len + 1, nullptr);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024.0;
}
}  // namespace

double resident_bytes() { return proc_status_bytes("VmRSS"); }
double peak_resident_bytes() { return proc_status_bytes("VmHWM"); }

void run_with_gflops(benchmark::State& state, double flops, const std::function<void()>& body) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) body();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (seconds > 0)
    state.counters["GFLOP/s"] = flops * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["flops"] = flops;  // per iteration: bench/ratios.py divides it by the time it reports
  state.SetItemsProcessed(state.iterations());
}

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
                                                 "chainrule_tensor", "bare_tape", "bare_statement", "sacado", "adolc",
                                                 "libtorch"};
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
  // Variants in the order they were first registered; within a variant, systems in canonical order,
  // so that the systems of one case run next to each other (and see the same machine load).
  std::map<std::string, size_t> variant_rank;
  for (const System& s : r.systems) variant_rank.try_emplace(s.variant, variant_rank.size());
  std::stable_sort(r.systems.begin(), r.systems.end(), [&](const System& a, const System& b) {
    return std::tuple(variant_rank[a.variant], system_rank(a.name), a.name) <
           std::tuple(variant_rank[b.variant], system_rank(b.name), b.name);
  });

  int disagreeing = 0;
  for (const Workload& w : r.workloads) {
    std::fprintf(log, "%s: %s\n", w.name.c_str(), w.description.c_str());
    // Each variant (case) of the workload is checked against the reference's check of that case;
    // a workload without a reference only requires every check to run.
    std::map<std::string, std::pair<Outcome, std::string>> want_by_variant;  // variant -> (numbers, error)
    auto reference_of = [&](const std::string& variant) -> const std::pair<Outcome, std::string>& {
      auto [it, inserted] = want_by_variant.try_emplace(variant);
      if (!inserted) return it->second;
      const auto ref = std::find_if(r.systems.begin(), r.systems.end(), [&](const System& s) {
        return s.workload == w.name && s.name == w.reference && s.variant == variant;
      });
      std::string error = ref == r.systems.end() ? "the reference system is not built" : "";
      if (ref != r.systems.end()) it->second.first = run_check(*ref, error);
      if (!error.empty()) it->second.second = "reference " + w.reference + ": " + error;
      return it->second;
    };

    for (const System& s : r.systems) {
      if (s.workload != w.name) continue;
      const bool is_reference = !w.reference.empty() && s.name == w.reference;
      std::string error;
      double max_rel = 0.0;
      size_t count = 0;
      if (w.reference.empty() || s.bound) {
        count = run_check(s, error).size();
      } else {
        const auto& [want, ref_error] = reference_of(s.variant);
        error = ref_error;
        count = want.size();
        if (error.empty() && !is_reference) {
          const Outcome got = run_check(s, error);
          if (error.empty()) error = compare(want, got, w.rel_tol, w.reference, max_rel);
        }
      }
      std::string name = w.name + "/" + s.name;
      if (!s.variant.empty()) name += "/" + s.variant;
      if (!error.empty()) {
        ++disagreeing;
        std::fprintf(log, "  %-40s FAILS the agreement check: %s\n", name.c_str(), error.c_str());
      } else if (w.reference.empty()) {
        std::fprintf(log, "  %-40s check ran (nothing to compare: a measurement)\n", name.c_str());
      } else if (s.bound) {
        std::fprintf(log, "  %-40s check ran (nothing to compare: a bound, part of the workload)\n", name.c_str());
      } else if (is_reference) {
        std::fprintf(log, "  %-40s reference (%zu numbers)\n", name.c_str(), count);
      } else {
        std::fprintf(log, "  %-40s agrees: %zu numbers, largest scaled difference %.1e (tolerance %.0e)\n",
                     name.c_str(), count, max_rel, w.rel_tol);
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
      benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), body)->MeasureProcessCPUTime();
      if (s.configure) s.configure(b);
    }
  }
  std::fflush(log);
  return disagreeing;
}

}  // namespace chainrule::bench
