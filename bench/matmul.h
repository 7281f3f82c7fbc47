#pragma once
// Workload `matmul`: square products C = A B, n x n, through chainrule's matmul against raw CBLAS.
// One variant per dtype, size and pass, named `<dtype>_n<n>_<pass>`:
//   forward            C = A B                                        2 n^3 flops
//   forward_backward   C = A B, then with the upstream gradient G:    6 n^3 flops
//                      dA = G B^T and dB = A^T G (the backward's two products)
// for float32 and float64 and n = 64, 256, 1024. The counter GFLOP/s is flops per wall second
// (bench::run_with_gflops). A, B and G are uniform in [-1, 1), from seeded Generators, identical for
// every system. The agreement check compares, for C (and dA, dB), the sum of all entries and 64
// entries at fixed positions, to kRelTol (entries are about sqrt(n/9); float32 rounding differs
// between kernels by about 1e-6 of that).
#include <string>
#include <utility>
#include <vector>

#include "bench/harness.h"

namespace chainrule::bench::matmul {

inline constexpr double kRelTol = 1e-4;
inline constexpr int kSizes[] = {64, 256, 1024};
enum class Pass { forward, forward_backward };

struct Problem {
  int n;
  std::vector<double> a, b, g;  // row-major [n, n]
};
const Problem& problem(int n);  // built once per n

inline double flops(int n, Pass pass) {
  const double product = 2.0 * n * n * n;
  return pass == Pass::forward ? product : 3.0 * product;
}

inline std::string variant_name(bool f64, int n, Pass pass) {
  std::string v = f64 ? "f64_n" : "f32_n";
  v += std::to_string(n);
  v += pass == Pass::forward ? "_forward" : "_forward_backward";
  return v;
}

// The numbers a check reports for one n x n result: its sum and 64 entries at fixed positions.
inline void append_sample(Outcome& out, const std::string& name, const std::vector<double>& values) {
  double total = 0.0;
  for (double v : values) total += v;
  out.emplace_back("sum " + name, total);
  const size_t size = values.size();
  for (size_t k = 0; k < 64; ++k) {
    const size_t i = (k * 2654435761u) % size;
    out.emplace_back(name + "[" + std::to_string(i) + "]", values[i]);
  }
}

// A system's product for element type T. Product<T> must provide:
//   explicit Product(const Problem&)   takes A, B, G (converted to T)
//   void forward()                     C = A B
//   void forward_backward()            C = A B, dA = G B^T, dB = A^T G
//   std::vector<std::vector<double>> results(Pass) const   C, or C, dA, dB, as doubles
template <template <class> class Product>
bool add(const std::string& system) {
  auto one = [&system]<class T>(int n, Pass pass) {
    auto check = [n, pass] {
      Product<T> p(problem(n));
      pass == Pass::forward ? p.forward() : p.forward_backward();
      Outcome out;
      static constexpr const char* names[3] = {"C", "dA", "dB"};
      const auto results = p.results(pass);
      for (size_t k = 0; k < results.size(); ++k) append_sample(out, names[k], results[k]);
      return out;
    };
    auto run = [n, pass](benchmark::State& state) {
      Product<T> p(problem(n));
      run_with_gflops(state, flops(n, pass), [&] { pass == Pass::forward ? p.forward() : p.forward_backward(); });
    };
    add_system({"matmul", system, check, run, variant_name(sizeof(T) == 8, n, pass)});
  };
  for (int n : kSizes)
    for (Pass pass : {Pass::forward, Pass::forward_backward}) {
      one.template operator()<float>(n, pass);
      one.template operator()<double>(n, pass);
    }
  return true;
}

}  // namespace chainrule::bench::matmul
