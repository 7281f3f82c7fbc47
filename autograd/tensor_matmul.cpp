// matmul: the forward through CBLAS and its rule (one gemm per batch matrix, or one for the whole
// batch when b has none): da = grad @ b^T, db = a^T @ grad; and the fused step's deferred products
// (add_product). linear, the same product for Dense, is in tensor_linear.cpp.
// A backward that is not recorded (the usual one) computes the products with CBLAS's transpose
// flags, reading the saved operands in place; a recorded one (create_graph) writes them with Tensor
// ops so that they can be differentiated again.
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "autograd/tensor.h"
#include "autograd/tensor_blas.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

namespace {

using detail::batched_gemm;
using detail::gemm;
using detail::gemv;
using detail::product;

// The leading (batch) dims of a shape of at least 2 dims.
Shape batch_of(const Shape& s) { return Shape(std::span<const int64_t>(s.begin(), s.size() - 2)); }

Shape without_dim(const Shape& s, int dim) {
  std::vector<int64_t> d = s.to_vector();
  d.erase(d.begin() + dim);
  return Shape(d);
}

// batch + [rows, cols], without the dim that promoting a 1-D operand added (`drop`: 2 for rows, 1
// for cols, 0 for none), so the gradient of a [k] input is [..., k]; the engine sums any remaining
// batch dims back to the input's shape.
Shape matrix_shape(const Shape& batch, int64_t rows, int64_t cols, int drop) {
  Shape s = batch;
  if (drop != 2) s.push_back(rows);
  if (drop != 1) s.push_back(cols);
  return s;
}

// The same for a gradient computed with Tensor ops.
Tensor drop_promoted_dim(const Tensor& t, int dim_from_end) {
  return reshape(t, without_dim(t.shape(), t.dim() - dim_from_end).to_vector());
}

// matmul's node. apply_fast serves the usual backward when b has no batch (b's batch dims, if any,
// are 1): the batch of a then folds into the rows of grad [rows, m] and of a [rows, k], and
//   da [rows, k] = grad @ b^T,  db [k, m] = a^T @ grad (the rows summed inside the gemm)
// are written into the sweep's buffers (beta = 1 where a gradient is already there). Each is first
// offered to the sink as a product (GradSink::defer): db for x @ W, da for W @ x. When a and b have
// the same batch dims (no broadcast), the same is done per batch matrix, without deferring; so too
// when a has no batch and b has all of it (W @ x over a batch of x, as a convolution's product),
// where da is the sum of the batch's products, accumulated in place. Other shapes (a gradient
// summed over a partly broadcast batch) take apply(): fresh buffers when not recorded, Tensor ops
// (differentiable again) under create_graph.
struct MatmulNode final : detail::Node {
  MatmulNode(detail::SavedTensor saved_a, detail::SavedTensor saved_b, bool av, bool bv, Shape as, Shape bs,
             Shape os, Shape bt, int64_t n_, int64_t m_, int64_t k_)
      : sa(std::move(saved_a)), sb(std::move(saved_b)), a_vec(av), b_vec(bv), a2(std::move(as)), b2(std::move(bs)),
        out2(std::move(os)), batch(std::move(bt)), n(n_), m(m_), k(k_) {}

  detail::SavedTensor sa, sb;
  bool a_vec, b_vec;        // promoted 1-D operands
  Shape a2, b2, out2;       // the operands and the result as matrices (batch + [rows, cols])
  Shape batch;              // the broadcast batch dims
  int64_t n, m, k;

  bool apply_fast(Tensor& grad, detail::GradSink& sink) override {
    const Shape b_batch = batch_of(b2);
    const bool folded = b_batch.numel() == 1;                               // one b for every row
    // One a for every b (an empty batch goes to apply(): its da is zeros, which no product writes).
    const bool a_shared = !folded && batch_of(a2).numel() == 1 && b_batch == batch && batch.numel() > 0;
    const bool paired = !folded && !a_shared && b_batch == batch && batch_of(a2) == batch;  // one b per a
    if (!folded && !a_shared && !paired) return false;
    const int64_t count = folded ? 1 : batch.numel();     // products
    const int64_t rows = folded ? batch.numel() * n : n;  // rows of each
    if (rows > INT_MAX || grad.dtype() != dtype || grad.numel() != count * rows * m) return false;
    if ((needs(0) && next[0].dtype != dtype) || (needs(1) && next[1].dtype != dtype)) return false;
    // The saved operands first (unpack checks their versions): a throw writes nothing.
    const Tensor bv = needs(0) ? sb.unpack(*this) : Tensor();
    const Tensor av = needs(1) ? sa.unpack(*this) : Tensor();
    if ((bv.defined() && (bv.dtype() != dtype || bv.numel() != count * k * m)) ||
        (av.defined() && (av.dtype() != dtype || av.numel() != (a_shared ? 1 : count) * rows * k)))
      return false;
    const bool deferrable = folded && rows > 0 && k > 0 && m > 0;  // BLAS is never given an empty dim
    bool da_deferred = false, db_deferred = false;
    if (needs(0) && deferrable) {  // W @ x: da [rows, k] = grad [rows, m] @ b^T
      detail::GradSink::Product p{grad, bv, false, true, rows, k, m};
      da_deferred = sink.defer(next[0], p);
    }
    if (needs(1) && deferrable) {  // x @ W: db [k, m] = a^T [k, rows] @ grad
      detail::GradSink::Product p{av, grad, true, false, k, m, rows};
      db_deferred = sink.defer(next[1], p);
    }
    // Both targets before any write, in the order written: for matmul(x, x) they are one buffer,
    // overwritten by da (or added to) and then added to by db, one batch matrix at a time.
    auto target = [&](int i, bool deferred) {
      return needs(i) && !deferred ? sink.target(next[i], nullptr) : detail::GradSink::Target{};
    };
    const detail::GradSink::Target ta = target(0, da_deferred);
    const detail::GradSink::Target tb = target(1, db_deferred);
    detail::dispatch(dtype, [&]<class T>() {
      const T* g = grad.impl()->data<T>();
      T* da = static_cast<T*>(ta.data);
      T* db = static_cast<T*>(tb.data);
      const T* b = da ? bv.impl()->data<T>() : nullptr;
      const T* a = db ? av.impl()->data<T>() : nullptr;
      // A shared a gets one gradient, the sum of every batch's: the first product writes it (or
      // adds to what is there), the others add.
      const int64_t a_step = a_shared ? 0 : rows * k;
      for (int64_t i = 0; i < count; ++i) {
        // da [rows, k] = grad [rows, m] @ b^T;  db [k, m] = a^T @ grad
        if (da) product<T>(false, true, g + i * rows * m, b + i * k * m, da + i * a_step, rows, k, m, 1.0,
                           ta.add || (a_shared && i > 0));
        if (db) product<T>(true, false, a + i * a_step, g + i * rows * m, db + i * k * m, k, m, rows, 1.0, tb.add);
      }
    });
    return true;
  }

  // The rule for everything apply_fast leaves: with create_graph, anomaly mode, traces, or a
  // gradient summed over a broadcast batch.
  std::vector<Tensor> apply(const Tensor& grad) override {
    std::vector<Tensor> grads(2);
    const Shape a_batch = batch_of(a2), b_batch = batch_of(b2);
    if (!GradMode::enabled() && grad.dtype() == dtype && grad.numel() == batch.numel() * n * m) {
      // Not recorded: the two products straight from the saved operands and grad, whose
      // bytes are already laid out as a2, b2 and out2 (promotion only adds a dim of 1).
      const Shape& g_batch = batch;
      detail::dispatch(grad.dtype(), [&]<class T>() {
        const T* g = grad.impl()->data<T>();
        if (needs(0)) {  // da [batch, n, k] = grad [batch, n, m] @ b^T
          const Tensor bv = sb.unpack(*this);
          grads[0] = detail::empty(matrix_shape(batch, n, k, a_vec ? 2 : 0), grad.dtype());
          batched_gemm<T>({g, g_batch, false}, {bv.impl()->data<T>(), b_batch, true},
                          grads[0].impl()->data<T>(), batch, n, k, m);
        }
        if (needs(1)) {  // db [batch, k, m] = a^T @ grad [batch, n, m]
          const Tensor av = sa.unpack(*this);
          const T* pa = av.impl()->data<T>();
          if (b_batch.numel() == 1 && batch.numel() > 1 && batch.numel() * n <= INT_MAX) {
            // b is shared by every batch: its gradient sums over them, which is one
            // product with the batch folded into the inner dimension.
            const Shape none;
            grads[1] = detail::empty(matrix_shape(b_batch, k, m, b_vec ? 1 : 0), grad.dtype());
            batched_gemm<T>({pa, none, true}, {g, none, false}, grads[1].impl()->data<T>(), none, k, m,
                            batch.numel() * n);
          } else {
            grads[1] = detail::empty(matrix_shape(batch, k, m, b_vec ? 1 : 0), grad.dtype());
            batched_gemm<T>({pa, a_batch, true}, {g, g_batch, false}, grads[1].impl()->data<T>(),
                            batch, k, m, n);
          }
        }
      });
      return grads;
    }
    const Tensor g = a_vec || b_vec ? reshape(grad, out2.to_vector()) : grad;
    if (needs(0)) {
      const Tensor bv = sb.unpack(*this);
      grads[0] = matmul(g, transpose(b_vec ? reshape(bv, b2.to_vector()) : bv, -1, -2));
      if (a_vec) grads[0] = drop_promoted_dim(grads[0], 2);
    }
    if (needs(1)) {
      const Tensor av = sa.unpack(*this);
      grads[1] = matmul(transpose(a_vec ? reshape(av, a2.to_vector()) : av, -1, -2), g);
      if (b_vec) grads[1] = drop_promoted_dim(grads[1], 1);
    }
    return grads;
  }

  void release_saved() override {
    sa.reset();
    sb.reset();
  }
};

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
  // Only a product that reaches BLAS is limited by its int dimensions: an empty one (a zero among
  // n, m, k or the batch) is empty or zeros, as LibTorch returns it.
  if (std::max({n, k, m}) > INT_MAX && n > 0 && m > 0 && k > 0 && batch.numel() > 0)
    throw std::invalid_argument(
        fmt::format("matmul: {} @ {} exceeds the dimensions BLAS can index", as.str(), bs.str()));

  Shape out2 = batch;  // the result before dropping promoted dims: batch + [n, m]
  try {
    out2.push_back(n);
    out2.push_back(m);
  } catch (const std::invalid_argument& e) {  // [2^40, 0] @ [0, 2^40]: 2^80 zeros
    throw std::invalid_argument(fmt::format("matmul: {} @ {} gives a result too large to make ({})", as.str(),
                                            bs.str(), e.what()));
  }
  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(n);
  if (!b_vec) out_shape.push_back(m);
  Tensor result = detail::empty(out_shape, dtype);

  detail::dispatch(dtype, [&]<class T>() {
    batched_gemm<T>({a.impl()->data<T>(), a_batch, false}, {b.impl()->data<T>(), b_batch, false},
                    result.impl()->data<T>(), batch, n, m, k);
  });

  if (!detail::should_record({&a, &b})) {
    detail::check_forward(result, "matmul", where);
    return result;
  }
  // da needs b and db needs a: keep only what a gradient will read.
  Ref<detail::Node> node(new MatmulNode(b.requires_grad() ? detail::SavedTensor::input(a, 0) : detail::SavedTensor(),
                                        a.requires_grad() ? detail::SavedTensor::input(b, 1) : detail::SavedTensor(),
                                        a_vec, b_vec, a2, b2, out2, batch, n, m, k));
  node->name = "matmul";
  node->where = where;
  detail::attach_node(result, std::move(node), {&a, &b});
  detail::set_replay(result, {a, b}, [where](const std::vector<Tensor>& in) { return matmul(in[0], in[1], where); });
  return result;
}

namespace detail {

void add_product(TensorImpl& c, const GradSink::Product& p, double alpha) {
  dispatch(c.dtype, [&]<class T>() {
    product<T>(p.ta, p.tb, p.a.impl()->data<T>(), p.b.impl()->data<T>(), c.data<T>(), p.n, p.m, p.k, alpha, true);
  });
}

}  // namespace detail

}  // namespace chainrule
