// Workload `memory` (bench/memory.h): the measurement helpers, and chainrule's bytes-per-op
// measurements (Scalar binary ops, one-element Tensor ops). mlp_b128_rss is registered beside each
// system's MLP (mlp_chainrule.cpp).
#include "bench/memory.h"

#include <thread>
#include <utility>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

namespace chainrule::bench::memory {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

struct Measured {
  double heap_bytes = 0, rss_bytes = 0;
  benchmark::UserCounters extra;
};

// Runs on a fresh thread, so that per-thread pools and tapes start empty and what the recording
// needs is taken from malloc (and shows in its statistics) rather than from earlier workloads' caches.
Measured measure(const Recorder& record, int ops) {
  Measured m;
  std::thread worker([&] {
    const double heap0 = heap_in_use_bytes(), rss0 = resident_bytes();
    std::shared_ptr<void> graph = record(ops, m.extra);
    m.heap_bytes = heap_in_use_bytes() - heap0;
    m.rss_bytes = resident_bytes() - rss0;
    graph.reset();  // released on the thread that recorded it
  });
  worker.join();
  return m;
}

void run_once(benchmark::internal::Benchmark* b) { b->Iterations(1)->Repetitions(1); }

}  // namespace

bool add_bytes_per_op(std::string system, std::string variant, int ops, Recorder record) {
  auto check = [record] {
    measure(record, 1000);
    return Outcome{};
  };
  auto run = [record, ops](benchmark::State& state) {
    Measured m;
    for (auto _ : state) m = measure(record, ops);
    state.counters["heap_bytes_per_op"] = m.heap_bytes / ops;
    state.counters["rss_bytes_per_op"] = m.rss_bytes / ops;
    state.counters["ops"] = ops;
    for (auto& [name, counter] : m.extra) state.counters[name] = counter;
  };
  return add_system({"memory", std::move(system), check, run, std::move(variant), run_once});
}

bool add_rss_over_steps(std::string system, std::function<std::function<double()>()> make_step) {
  auto check = [make_step] {
    const std::function<double()> step = make_step();
    step();
    return Outcome{};
  };
  auto run = [make_step](benchmark::State& state) {
    for (auto _ : state) {
      const std::function<double()> step = make_step();
      // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak read at
      // the end is the peak over these steps, not over the earlier workloads.
      std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
      const bool peak_reset = f && std::fputs("5", f) >= 0;
      if (f) std::fclose(f);
      double loss = step();
      const double rss1 = resident_bytes(), heap1 = heap_in_use_bytes();
      for (int s = 2; s <= kRssSteps; ++s) loss = step();
      benchmark::DoNotOptimize(loss);
      const double rss_n = resident_bytes(), heap_n = heap_in_use_bytes();
      // malloc keeps freed memory resident, so RSS only shows growth beyond the process's earlier
      // peak; the heap in use shows what the steps hold on to.
      state.counters["heap_step_1_MiB"] = heap1 / kMiB;
      state.counters["heap_step_" + std::to_string(kRssSteps) + "_MiB"] = heap_n / kMiB;
      state.counters["rss_step_1_MiB"] = rss1 / kMiB;
      state.counters["rss_step_" + std::to_string(kRssSteps) + "_MiB"] = rss_n / kMiB;
      state.counters["rss_growth_MiB"] = (rss_n - rss1) / kMiB;
      state.counters["peak_rss_MiB"] = peak_reset ? peak_resident_bytes() / kMiB : -1.0;
      state.counters["steps"] = kRssSteps;
    }
  };
  return add_system({"memory", std::move(system), check, run, "mlp_b128_rss", run_once});
}

namespace {

// y <- y * w and y <- y + b alternately on Scalars: every op is one binary op with a leaf.
std::shared_ptr<void> record_scalar_chain(int ops, benchmark::UserCounters& counters) {
  struct Graph {
    Scalar w = Scalar::leaf(0.999), b = Scalar::leaf(0.001), y;
  };
  auto g = std::make_shared<Graph>();
  const auto before = detail::scalar_tape_stats();
  g->y = Scalar::leaf(0.5) * 1.0;  // an interior start, so that every op below records
  const auto start = detail::scalar_tape_stats();
  for (int k = 0; k < ops; ++k) g->y = k % 2 == 0 ? g->y * g->w : g->y + g->b;
  const auto after = detail::scalar_tape_stats();
  const double records = static_cast<double>(after.records - start.records);
  const double constants = static_cast<double>(after.constants - start.constants);  // none here
  counters["tape_records_per_op"] = records / ops;
  counters["tape_bytes_per_op"] =
      (records * static_cast<double>(after.record_bytes) + constants * sizeof(double)) / ops;
  counters["tape_capacity_bytes_per_op"] =
      static_cast<double>(after.capacity - before.capacity) * static_cast<double>(after.record_bytes) / ops;
  return g;
}

// y <- y * w on one-element float64 Tensors (w requires grad): the graph of `ops` mul nodes stays
// alive through the last y.
std::shared_ptr<void> record_tensor_chain(int ops, benchmark::UserCounters&) {
  auto y = std::make_shared<Tensor>(from_vector({0.5}, {1}, DType::float64));
  const Tensor w = from_vector({0.999}, {1}, TensorOptions(DType::float64).requires_grad(true));
  for (int k = 0; k < ops; ++k) *y = *y * w;
  return y;
}

[[maybe_unused]] const bool workload_registered = add_workload(
    {"memory", "", 0.0,
     "bytes per recorded op (Scalar binary op; one-element Tensor op) and resident memory over "
     "10,000 mlp_b128 steps; counters, run once"});
[[maybe_unused]] const bool scalar_registered =
    add_bytes_per_op("chainrule_scalar", "binary_op", 1 << 20, record_scalar_chain);
[[maybe_unused]] const bool tensor_registered =
    add_bytes_per_op("chainrule_tensor", "tiny_op", 100000, record_tensor_chain);

}  // namespace
}  // namespace chainrule::bench::memory
