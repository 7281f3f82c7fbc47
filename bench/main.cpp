// The bench's main: records the environment, sets every system to the same number of threads, runs
// the agreement checks, then hands over to Google Benchmark.
//
//   bench [--bench_threads=N] [Google Benchmark flags...]
//
// --bench_threads (default 1) is applied to OpenBLAS (openblas_set_num_threads) and to every system
// with a thread pool (LibTorch); OMP_NUM_THREADS and OPENBLAS_NUM_THREADS should be set to the same
// number before the process starts (bench/run.sh does), since OpenBLAS and OpenMP read them at load.
// Everything recorded here also goes into the JSON output's "context".
#include <cblas.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/harness.h"

#ifndef CHAINRULE_BENCH_MISSING
#define CHAINRULE_BENCH_MISSING ""
#endif

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

void record(const std::string& key, const std::string& value) {
  std::printf("  %-22s %s\n", key.c_str(), value.c_str());
  benchmark::AddCustomContext(key, value);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--bench_threads=", 16) == 0) {
      threads = std::atoi(argv[i] + 16);
      if (threads < 1) {
        std::fprintf(stderr, "bench: --bench_threads wants a positive integer, got '%s'\n", argv[i] + 16);
        return 2;
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) return 2;

  openblas_set_num_threads(threads);
  std::printf("chainrule bench environment (same for every system):\n");
  record("chainrule_revision", env_or("CHAINRULE_REVISION", "(unknown: set by bench/run.sh)"));
  record("threads", std::to_string(threads));
  record("OMP_NUM_THREADS", env_or("OMP_NUM_THREADS", "(unset)"));
  record("OPENBLAS_NUM_THREADS", env_or("OPENBLAS_NUM_THREADS", "(unset)"));
  record("OMP_WAIT_POLICY", env_or("OMP_WAIT_POLICY", "(unset)"));
  record("OPENBLAS_CORETYPE", env_or("OPENBLAS_CORETYPE", "(unset)"));
  record("openblas_corename", openblas_get_corename());
  record("openblas_config", openblas_get_config());
  for (const auto& [system, what] : chainrule::bench::set_threads(threads)) record(system + "_threads", what);
  const std::string missing = CHAINRULE_BENCH_MISSING;
  record("systems_missing", missing.empty() ? "none" : missing);
  for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    if (env_or(var, "") != std::to_string(threads))
      std::printf("  warning: %s is not %d; set it before starting the bench (bench/run.sh does)\n", var,
                  threads);
  }
  std::printf("\nagreement check before timing:\n");
  const int disagreeing = chainrule::bench::check_and_register(stdout);
  if (disagreeing > 0)
    std::printf("%d system(s) failed the agreement check: their benchmarks report an error\n", disagreeing);
  std::printf("\n");
  std::fflush(stdout);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
