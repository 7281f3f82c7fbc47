#!/usr/bin/env bash
# bench/run.sh: install what the bench needs, build it in build-bench/ (Release), run it at 1 and at 2
# threads, and print for each thread count the ratio tables (Markdown) against the floor
# (hand-written code, or raw CBLAS) and against LibTorch.
#
#   bench/run.sh [Google Benchmark flags...]     e.g. bench/run.sh --benchmark_filter=lecture
#
# Environment (each recorded in the JSON's context and in the printed table):
#   BENCH_THREADS      the thread counts to run, one run each (default "1 2"): in each run every
#                      system gets the same number: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
#                      openblas_set_num_threads and torch::set_num_threads
#   BENCH_REPETITIONS  Google Benchmark repetitions (default 5); the tables use the median. They
#                      run in registration order, not interleaved at random
#                      (--benchmark_enable_random_interleaving): ADOL-C keeps its location store
#                      at the most adoubles ever alive, so once scalar_*/adolc has run, every later
#                      ADOL-C tape sweeps 16,384 locations (lecture/adolc measured 131 us instead of
#                      ~19 us interleaved); lecture runs first
#   OMP_WAIT_POLICY    OpenMP's idle workers (default passive): LibTorch's OpenMP workers otherwise
#                      spin while OpenBLAS's own threads run a product, and at 2 threads on 2 cores
#                      that made LibTorch's mlp_b128 step 10x slower under load; only LibTorch uses
#                      OpenMP here, so this changes nothing for the other systems
#   OPENBLAS_CORETYPE  OpenBLAS kernels, the same for every system: as the environment sets it
#                      (this machine's sets Haswell), else OpenBLAS's own choice (here it would be
#                      Cooperlake, AVX-512: float32 products about twice as fast; bench/HISTORY.md).
#                      Recorded in the JSON with the kernels OpenBLAS reports.
# Output: build-bench/bench-<threads>.json (Google Benchmark JSON) and the tables on stdout. apt-get runs only
# for packages that are missing; an existing build-bench/ is rebuilt incrementally.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config python3 libfmt-dev libopenblas-dev libbenchmark-dev
          libtrilinos-sacado-dev libtrilinos-kokkos-dev libadolc-dev libtorch-dev)
BUILD_DIR=build-bench
THREADS="${BENCH_THREADS:-1 2}"
REPETITIONS="${BENCH_REPETITIONS:-5}"

cd "$(dirname "$0")/.."
# shellcheck source=../cmake/debian_packages.sh
source cmake/debian_packages.sh
install_missing_packages bench/run.sh "${PACKAGES[@]}"  # libtorch-dev is large

# Only the bench: tests and examples are built by ../setup.sh.
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCHAINRULE_BUILD_BENCH=ON \
  -DCHAINRULE_BUILD_TESTS=OFF -DCHAINRULE_BUILD_EXAMPLES=OFF
cmake --build "$BUILD_DIR" --target bench --parallel "$(nproc)"

# The library state measured: the commit, and whether the engine's sources differ from it.
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- autograd nn optim 2>/dev/null)" ]]; then
  revision+=" + uncommitted changes in autograd/ nn/ optim/"
fi
export CHAINRULE_REVISION="$revision"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
machine="$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
for threads in $THREADS; do
  json="$BUILD_DIR/bench-$threads.json"
  echo
  echo "=== $threads thread(s): machine: $machine; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
    "$BUILD_DIR/bench/bench" --bench_threads="$threads" \
    --benchmark_repetitions="$REPETITIONS" --benchmark_report_aggregates_only=true \
    --benchmark_out="$json" --benchmark_out_format=json "$@"
  echo "=== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
for threads in $THREADS; do
  echo
  echo "## $threads thread(s)"
  echo
  python3 bench/ratios.py "$BUILD_DIR/bench-$threads.json"
done
echo
echo "JSON: $(for threads in $THREADS; do printf '%s ' "$BUILD_DIR/bench-$threads.json"; done)"
