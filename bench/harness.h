#pragma once
// The bench harness: workloads, the systems that run them, and the agreement check that every
// system must pass before it is timed.
//
// A workload (`lecture`, `tinyop`, later `mlp_b128`, `matmul`, ...) is one problem with identical
// data, initial state, loss and update in every system. A system (`handwritten`, `chainrule_scalar`,
// `chainrule_tensor`, `sacado`, `adolc`, `libtorch`, ...) registers, per workload, two functions:
//   - check(): runs the workload's agreement protocol from the initial state (for example 5 epochs)
//     and returns named numbers (losses, final weights, gradients);
//   - run(state): the timed Google Benchmark body.
// Before anything is timed, main() runs every check and compares each system's numbers with the
// workload's reference system (the hand-written floor) to the workload's tolerance. A system that
// disagrees, or whose check throws, is still registered but its benchmark ends at once with
// state.SkipWithError(<the first number that differs>), so a fast wrong answer cannot win.
//
// Benchmark names are `<workload>/<system>`. Systems register themselves from their own source
// file with a static registrar; a peer that CMake did not find is simply not compiled, and main()
// reports it as missing:
//
//   const bool registered = bench::add_system({"lecture", "sacado", &check, &run});
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace chainrule::bench {

// The numbers a system reports after the agreement protocol, in a fixed order shared by every
// system of the workload: (name, value) pairs such as ("loss[epoch 3]", 0.71), ("W1[0,1]", -0.41).
using Outcome = std::vector<std::pair<std::string, double>>;

struct Workload {
  std::string name;         // "lecture"
  std::string reference;    // the system every other one is compared with ("handwritten"); empty:
                            // no comparison (each system's check must only not throw), as for
                            // `memory`, whose systems measure different things
  double rel_tol;           // |a - b| <= rel_tol * max(1, |a|, |b|) for every reported number
  std::string description;  // one line for the start-up banner
};

struct System {
  std::string workload;  // "lecture"
  std::string name;      // "sacado"
  std::function<Outcome()> check;
  std::function<void(benchmark::State&)> run;
  // Optional: one case of a workload that has several (`matmul`: "f32_n256_forward"). The benchmark
  // is then named `<workload>/<system>/<variant>` and compared with the reference system's check of
  // the same variant.
  std::string variant = {};
  // Optional: adjusts the registered benchmark (e.g. ->Iterations(1)->Repetitions(1) for a
  // measurement that runs once, such as 10,000 training steps).
  std::function<void(benchmark::internal::Benchmark*)> configure = {};
  // Optional: run the check in a forked child process, so that the state it leaves in a peer's
  // globals does not reach the timed benchmarks of other workloads (ADOL-C keeps its location store
  // at the largest number of adoubles ever alive, and every later tape's sweep pays for that size).
  bool check_in_child = false;
  // Optional: the system is a bound, not a competitor: it runs only part of the workload (the
  // `cblas` system of mlp_b*: the step's matrix products and nothing else), so it has
  // no result to compare and its check only has to run. It shows how much of a step the products
  // themselves take.
  bool bound = false;
};

// Registration (from static initialisers; order does not matter, main() sorts).
bool add_workload(Workload workload);
bool add_system(System system);

// Called by main() with --bench_threads (1 unless given): systems that own a thread pool (LibTorch)
// register a setter here so that every system runs with the same number of threads.
bool add_thread_setter(std::string system, std::function<std::string(int threads)> set);

// The canonical order of systems in the benchmark list and in the ratio tables.
const std::vector<std::string>& system_order();

// Shared helpers for the workloads.

// `count` numbers drawn uniformly from [low, high) by chainrule::Generator(seed), so that every
// system of a workload gets identical data and weights (each converts them to its own type).
std::vector<double> uniform_numbers(size_t count, double low, double high, uint64_t seed);

// The gradients or parameters a check reports, each as (name, value): name[0], name[1], ...
void append_values(Outcome& out, const std::string& name, const std::vector<double>& values);

// Memory as the process sees it, in bytes.
//   heap_in_use_bytes(): malloc'd bytes in use (glibc mallinfo2: uordblks + hblkhd, all arenas).
//   resident_bytes() / peak_resident_bytes(): VmRSS / VmHWM of /proc/self/status.
double heap_in_use_bytes();
double resident_bytes();
double peak_resident_bytes();

// Runs `body` once per benchmark iteration and sets the counter "GFLOP/s": `flops` per iteration
// over the wall time the loop took (not CPU time: at 2 threads the process CPU time counts both
// cores, which is not the rate a user sees), and "flops" (per iteration), from which
// bench/ratios.py computes the rate over the same time measure as its tables.
void run_with_gflops(benchmark::State& state, double flops, const std::function<void()>& body);

// Runs every check, prints the verdicts, and registers the benchmarks in canonical order.
// Returns the number of systems that disagree (0 when all agree).
int check_and_register(std::FILE* log);

// Thread setters, called once at start-up. Returns (system, what was set) per setter.
std::vector<std::pair<std::string, std::string>> set_threads(int threads);

}  // namespace chainrule::bench
