#pragma once
// Workload `memory`: what recording costs in bytes, and whether training holds its memory flat.
// Each system of the workload is a measurement (a variant), run once (one iteration, one
// repetition); its results are counters, its time is not a figure of merit:
//   memory/<system>/binary_op      bytes per recorded binary op (Scalar: tape bytes and heap bytes)
//   memory/<system>/tiny_op        bytes per recorded op on one-element tensors (heap bytes)
//   memory/<system>/mlp_b128_rss   resident memory after step 1 and after step kRssSteps of mlp_b128,
//                                  and the peak over the steps (VmHWM, reset before step 1)
// There is no reference system: the check of each variant runs it small, and must not throw.
#include <functional>
#include <memory>
#include <string>

#include "bench/harness.h"

namespace chainrule::bench::memory {

inline constexpr int kRssSteps = 10000;

// What a bytes-per-op measurement records: `record(ops, counters)` records a chain of `ops` ops and
// returns an object that keeps the whole graph alive until it is destroyed; it may add counters of
// its own (the Scalar tape's bytes per record).
using Recorder = std::function<std::shared_ptr<void>(int ops, benchmark::UserCounters& counters)>;

// Registers memory/<system>/<variant>: on a fresh thread (empty per-thread pools and tapes), the heap
// in use (counter heap_bytes_per_op) and the resident set (rss_bytes_per_op) before and after
// record(ops), divided by ops.
bool add_bytes_per_op(std::string system, std::string variant, int ops, Recorder record);

// Registers memory/<system>/mlp_b128_rss: make_step() builds a network and returns its training
// step; the benchmark runs kRssSteps steps and reports resident memory in MiB after step 1
// (rss_step_1_MiB), after the last (rss_step_<kRssSteps>_MiB), their difference, the peak over the
// steps, and the malloc'd bytes in use after step 1 and after the last (heap_step_*_MiB).
bool add_rss_over_steps(std::string system, std::function<std::function<double()>()> make_step);

}  // namespace chainrule::bench::memory
