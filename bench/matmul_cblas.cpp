// matmul/cblas: the floor, raw CBLAS on preallocated buffers: one gemm for the forward, and for the
// backward the two transposed products through the Trans flags (no copies). Also defines the shared
// problem (matmul.h).
#include <cblas.h>

#include <map>

#include "bench/matmul.h"

namespace chainrule::bench::matmul {

const Problem& problem(int n) {
  static std::map<int, Problem> made;  // built on first use, from the checks (single-threaded)
  auto [it, inserted] = made.try_emplace(n);
  Problem& p = it->second;
  if (inserted) {
    const auto count = static_cast<size_t>(n) * n, seed = static_cast<uint64_t>(n);
    p.n = n;
    p.a = uniform_numbers(count, -1.0, 1.0, 100 + seed);
    p.b = uniform_numbers(count, -1.0, 1.0, 200 + seed);
    p.g = uniform_numbers(count, -1.0, 1.0, 300 + seed);
  }
  return p;
}

namespace {

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int n, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, ta, tb, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int n, const double* a, const double* b, double* c) {
  cblas_dgemm(CblasRowMajor, ta, tb, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
}

template <class T>
class CblasProduct {
 public:
  explicit CblasProduct(const Problem& p)
      : n_(p.n), a_(p.a.begin(), p.a.end()), b_(p.b.begin(), p.b.end()), g_(p.g.begin(), p.g.end()),
        c_(a_.size()), da_(a_.size()), db_(a_.size()) {}

  void forward() { gemm(CblasNoTrans, CblasNoTrans, n_, a_.data(), b_.data(), c_.data()); }
  void forward_backward() {
    forward();
    gemm(CblasNoTrans, CblasTrans, n_, g_.data(), b_.data(), da_.data());  // dA = G B^T
    gemm(CblasTrans, CblasNoTrans, n_, a_.data(), g_.data(), db_.data());  // dB = A^T G
  }
  std::vector<std::vector<double>> results(Pass pass) const {
    std::vector<std::vector<double>> out{{c_.begin(), c_.end()}};
    if (pass == Pass::forward_backward) {
      out.emplace_back(da_.begin(), da_.end());
      out.emplace_back(db_.begin(), db_.end());
    }
    return out;
  }

 private:
  int n_;
  std::vector<T> a_, b_, g_, c_, da_, db_;
};

[[maybe_unused]] const bool workload_registered = add_workload(
    {"matmul", "cblas", kRelTol,
     "square products n = 64, 256, 1024, float32 and float64: forward (C = AB) and forward + backward "
     "(also dA = G B^T, dB = A^T G); GFLOP/s over wall time"});
[[maybe_unused]] const bool registered = add<CblasProduct>("cblas");

}  // namespace
}  // namespace chainrule::bench::matmul
