#pragma once
// Internal: the CBLAS calls behind matmul and linear (autograd/tensor_matmul.cpp,
// autograd/tensor_linear.cpp) and the fused step's deferred products, with the cases BLAS must not
// see (empty dims) and the shapes where another call than gemm is faster, decided once.
#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "autograd/shape.h"
#include "autograd/tensor_loops.h"

namespace chainrule::detail {

// c [n, m] = alpha op(a) [n, k] @ op(b) [k, m] + beta c; a is stored [n, k] (or [k, n] when ta), b
// [k, m] (or [m, k]).
inline void gemm(bool ta, bool tb, const float* a, const float* b, float* c, int n, int m, int k, double alpha = 1.0,
          double beta = 0.0) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, n, m, k,
              static_cast<float>(alpha), a, ta ? n : k, b, tb ? k : m, static_cast<float>(beta), c, m);
}
inline void gemm(bool ta, bool tb, const double* a, const double* b, double* c, int n, int m, int k, double alpha = 1.0,
          double beta = 0.0) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, n, m, k, alpha, a,
              ta ? n : k, b, tb ? k : m, beta, c, m);
}

// y [rows or cols] = alpha op(a) @ x + beta y with a stored [rows, cols]: op(a) is a when !ta (y has
// rows entries), a^T when ta (y has cols entries).
inline void gemv(bool ta, const float* a, const float* x, float* y, int rows, int cols, double alpha = 1.0,
          double beta = 0.0) {
  cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, rows, cols, static_cast<float>(alpha), a, cols, x, 1,
              static_cast<float>(beta), y, 1);
}
inline void gemv(bool ta, const double* a, const double* x, double* y, int rows, int cols, double alpha = 1.0,
          double beta = 0.0) {
  cblas_dgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, rows, cols, alpha, a, cols, x, 1, beta, y, 1);
}

// c [n, m] += alpha u [n] v [m]^T.
inline void ger(const float* u, const float* v, float* c, int n, int m, double alpha) {
  cblas_sger(CblasRowMajor, n, m, static_cast<float>(alpha), u, 1, v, 1, c, m);
}
inline void ger(const double* u, const double* v, double* c, int n, int m, double alpha) {
  cblas_dger(CblasRowMajor, n, m, alpha, u, 1, v, 1, c, m);
}

// out [n, m] = u [n] v [m]^T, written in one pass (gemm with k = 1 would first zero out).
template <class T>
void outer(const T* u, const T* v, T* out, int64_t n, int64_t m) {
  for (int64_t i = 0; i < n; ++i) {
    const T ui = u[i];
    T* row = out + i * m;
    for (int64_t j = 0; j < m; ++j) row[j] = ui * v[j];
  }
}

// c [n, m] = alpha op(a) @ op(b) (+ c when add), summed over k; a is stored [n, k] (or [k, n] when
// ta), b [k, m] (or [m, k] when tb). Every backward product and the fused step's go through here:
// an empty c is left alone and an empty sum gives zeros (BLAS is never given an empty dim), one
// term is an outer product (ger when adding), one row or one column a gemv, the rest one gemm.
// alpha is 1 unless add (the fused step's deferred products). n, m, k fit in an int (the ops
// check).
template <class T>
void product(bool ta, bool tb, const T* a, const T* b, T* c, int64_t n, int64_t m, int64_t k, double alpha,
             bool add) {
  const auto in = static_cast<int>(n), im = static_cast<int>(m), ik = static_cast<int>(k);
  const double beta = add ? 1.0 : 0.0;
  if (n == 0 || m == 0) return;
  if (k == 0) {
    if (!add) std::fill(c, c + n * m, T(0));
  } else if (k == 1) {  // a's n values and b's m values are contiguous whichever way they are read
    if (add) ger(a, b, c, in, im, alpha);
    else outer(a, b, c, n, m);
  } else if (n == 1) {  // c^T = op(b)^T a
    if (tb) gemv(false, b, a, c, im, ik, alpha, beta);
    else gemv(true, b, a, c, ik, im, alpha, beta);
  } else if (m == 1) {  // c = op(a) b
    if (ta) gemv(true, a, b, c, ik, in, alpha, beta);
    else gemv(false, a, b, c, in, ik, alpha, beta);
  } else {
    gemm(ta, tb, a, b, c, in, im, ik, alpha, beta);
  }
}

// One operand of a product: its data, its batch dims, and whether the product reads its matrices
// transposed.
template <class T>
struct Operand {
  const T* data;
  const Shape& batch;
  bool transposed;
};

// out [batch..., n, m] = op(x) @ op(y) for every broadcast batch index (out contiguous, of
// batch.numel() * n * m elements). When y has no batch and x is not transposed, the batch folds into
// the rows of a single gemm.
template <class T>
void batched_gemm(Operand<T> x, Operand<T> y, T* out, const Shape& batch, int64_t n, int64_t m, int64_t k) {
  const int64_t total = batch.numel() * n * m;
  if (total == 0) return;
  if (k == 0) {  // an empty sum: zeros, and BLAS would be given invalid leading dims
    std::fill(out, out + total, T(0));
    return;
  }
  const auto in = static_cast<int>(n), im = static_cast<int>(m), ik = static_cast<int>(k);
  if (y.batch.numel() == 1 && !x.transposed && batch.numel() * n <= INT_MAX) {
    gemm(false, y.transposed, x.data, y.data, out, static_cast<int>(batch.numel() * n), im, ik);
    return;
  }
  detail::for_each_broadcast(batch, x.batch, y.batch, [&](int64_t o, int64_t ix, int64_t iy) {
    gemm(x.transposed, y.transposed, x.data + ix * n * k, y.data + iy * k * m, out + o * n * m, in, im, ik);
  });
}

}  // namespace chainrule::detail
