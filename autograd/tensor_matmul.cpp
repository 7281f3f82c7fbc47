// matmul: the forward through CBLAS (one gemm per batch matrix) and its rule, da = grad @ b^T,
// db = a^T @ grad, written with Tensor ops so that a recorded backward (create_graph) works.
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "autograd/tensor.h"
#include "autograd/tensor_impl.h"

namespace chainrule {

namespace {

void gemm(const float* a, const float* b, float* c, int n, int m, int k) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m, k, 1.0f, a, k, b, m, 0.0f, c, m);
}
void gemm(const double* a, const double* b, double* c, int n, int m, int k) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m, k, 1.0, a, k, b, m, 0.0, c, m);
}

// The leading (batch) dims of a shape of at least 2 dims.
Shape batch_of(const Shape& s) { return Shape(std::span<const int64_t>(s.begin(), s.size() - 2)); }

Shape without_dim(const Shape& s, int dim) {
  std::vector<int64_t> d = s.to_vector();
  d.erase(d.begin() + dim);
  return Shape(d);
}

// Removes the dim that promoting a 1-D operand added, so the gradient of a [k] input is [..., k];
// the engine sums any remaining batch dims back to [k].
Tensor drop_promoted_dim(const Tensor& t, int dim_from_end) {
  return reshape(t, without_dim(t.shape(), t.dim() - dim_from_end).to_vector());
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, Where where) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("matmul: an operand is undefined");
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  if (as.size() == 0 || bs.size() == 0)
    throw std::invalid_argument(
        fmt::format("matmul: both operands need at least 1 dimension, got {} @ {} (use * to scale by a number)",
                    as.str(), bs.str()));
  const DType dtype = detail::result_dtype(a, b, "matmul");

  // NumPy promotion: a [k] is a [1, k] row, b [k] a [k, 1] column; the added dim is dropped from
  // the result.
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  const Shape a2 = a_vec ? Shape{1, as[0]} : as;
  const Shape b2 = b_vec ? Shape{bs[0], 1} : bs;
  const int64_t n = a2[a2.size() - 2], k = a2[a2.size() - 1];
  const int64_t kb = b2[b2.size() - 2], m = b2[b2.size() - 1];
  if (k != kb)
    throw std::invalid_argument(
        fmt::format("matmul: inner dimensions differ: {} @ {} ({} vs {})", as.str(), bs.str(), k, kb));

  const Shape a_batch = batch_of(a2), b_batch = batch_of(b2);
  Shape batch;
  try {
    batch = broadcast_shapes(a_batch, b_batch, "matmul");
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(fmt::format("matmul: batch dimensions cannot be broadcast: {} @ {} ({} vs {})",
                                            as.str(), bs.str(), a_batch.str(), b_batch.str()));
  }
  if (std::max({n, k, m}) > INT_MAX)
    throw std::invalid_argument(
        fmt::format("matmul: {} @ {} exceeds the dimensions BLAS can index", as.str(), bs.str()));

  Shape out2 = batch;  // the result before dropping promoted dims: batch + [n, m]
  out2.push_back(n);
  out2.push_back(m);
  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(n);
  if (!b_vec) out_shape.push_back(m);
  Tensor result = detail::empty(out_shape, dtype);

  detail::dispatch(dtype, [&]<class T>() {
    const T* pa = a.impl()->data<T>();
    const T* pb = b.impl()->data<T>();
    T* pc = result.impl()->data<T>();
    if (result.numel() == 0) return;
    if (k == 0) {  // an empty sum: zeros, and BLAS would be given invalid leading dims
      std::fill(pc, pc + result.numel(), T(0));
      return;
    }
    // One b for every batch: the batch folds into the rows of a single gemm.
    if (b_batch.numel() == 1 && batch.numel() * n <= INT_MAX) {
      gemm(pa, pb, pc, static_cast<int>(batch.numel() * n), static_cast<int>(m), static_cast<int>(k));
      return;
    }
    detail::for_each_broadcast(batch, a_batch, b_batch, [&](int64_t o, int64_t ia, int64_t ib) {
      gemm(pa + ia * n * k, pb + ib * k * m, pc + o * n * m, static_cast<int>(n), static_cast<int>(m),
           static_cast<int>(k));
    });
  });

  if (!detail::should_record({&a, &b})) {
    detail::check_forward(result, "matmul", where);
    return result;
  }
  // da needs b and db needs a: keep only what a gradient will read.
  const detail::SavedTensor sa = b.requires_grad() ? detail::SavedTensor::input(a) : detail::SavedTensor();
  const detail::SavedTensor sb = a.requires_grad() ? detail::SavedTensor::input(b) : detail::SavedTensor();
  detail::record(result, "matmul", {&a, &b},
                 [sa, sb, a_vec, b_vec, a2, b2, out2](const Tensor& grad, detail::Node& self) {
                   const Tensor g = a_vec || b_vec ? reshape(grad, out2.to_vector()) : grad;
                   std::vector<Tensor> grads(2);
                   if (self.needs(0)) {
                     const Tensor bv = sb.unpack(self);
                     grads[0] = matmul(g, transpose(b_vec ? reshape(bv, b2.to_vector()) : bv, -1, -2));
                     if (a_vec) grads[0] = drop_promoted_dim(grads[0], 2);
                   }
                   if (self.needs(1)) {
                     const Tensor av = sa.unpack(self);
                     grads[1] = matmul(transpose(a_vec ? reshape(av, a2.to_vector()) : av, -1, -2), g);
                     if (b_vec) grads[1] = drop_promoted_dim(grads[1], 1);
                   }
                   return grads;
                 },
                 where);
  detail::set_replay(result, {a, b}, [where](const std::vector<Tensor>& in) { return matmul(in[0], in[1], where); });
  return result;
}

}  // namespace chainrule
