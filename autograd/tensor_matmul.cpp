// matmul and linear: the forwards through CBLAS and their rules. matmul (one gemm per batch matrix,
// or one for the whole batch when b has none): da = grad @ b^T, db = a^T @ grad. linear, matmul with
// a weight read transposed in place plus a bias: dx = grad @ w, dw = grad^T @ x, db = sum_rows(grad).
// A backward that is not recorded (the usual one) computes the products with CBLAS's transpose
// flags, reading the saved operands in place; a recorded one (create_graph) writes them with Tensor
// ops so that they can be differentiated again.
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "autograd/tensor.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

namespace {

// c [n, m] = alpha op(a) [n, k] @ op(b) [k, m] + beta c; a is stored [n, k] (or [k, n] when ta), b
// [k, m] (or [m, k]).
void gemm(bool ta, bool tb, const float* a, const float* b, float* c, int n, int m, int k, double alpha = 1.0,
          double beta = 0.0) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, n, m, k,
              static_cast<float>(alpha), a, ta ? n : k, b, tb ? k : m, static_cast<float>(beta), c, m);
}
void gemm(bool ta, bool tb, const double* a, const double* b, double* c, int n, int m, int k, double alpha = 1.0,
          double beta = 0.0) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, n, m, k, alpha, a,
              ta ? n : k, b, tb ? k : m, beta, c, m);
}

// y [rows or cols] = alpha op(a) @ x + beta y with a stored [rows, cols]: op(a) is a when !ta (y has
// rows entries), a^T when ta (y has cols entries).
void gemv(bool ta, const float* a, const float* x, float* y, int rows, int cols, double alpha = 1.0,
          double beta = 0.0) {
  cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, rows, cols, static_cast<float>(alpha), a, cols, x, 1,
              static_cast<float>(beta), y, 1);
}
void gemv(bool ta, const double* a, const double* x, double* y, int rows, int cols, double alpha = 1.0,
          double beta = 0.0) {
  cblas_dgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, rows, cols, alpha, a, cols, x, 1, beta, y, 1);
}

// c [n, m] += alpha u [n] v [m]^T.
void ger(const float* u, const float* v, float* c, int n, int m, double alpha) {
  cblas_sger(CblasRowMajor, n, m, static_cast<float>(alpha), u, 1, v, 1, c, m);
}
void ger(const double* u, const double* v, double* c, int n, int m, double alpha) {
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
// the same batch dims (no broadcast), the same is done per batch matrix, without deferring. Other
// shapes (a gradient summed over a broadcast batch) take apply(): fresh buffers when not recorded,
// Tensor ops (differentiable again) under create_graph.
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
    const bool paired = !folded && b_batch == batch && batch_of(a2) == batch;  // one b per a matrix
    if (!folded && !paired) return false;
    const int64_t count = folded ? 1 : batch.numel();     // products
    const int64_t rows = folded ? batch.numel() * n : n;  // rows of each
    if (rows > INT_MAX || grad.dtype() != dtype || grad.numel() != count * rows * m) return false;
    if ((needs(0) && next[0].dtype != dtype) || (needs(1) && next[1].dtype != dtype)) return false;
    // The saved operands first (unpack checks their versions): a throw writes nothing.
    const Tensor bv = needs(0) ? sb.unpack(*this) : Tensor();
    const Tensor av = needs(1) ? sa.unpack(*this) : Tensor();
    if ((bv.defined() && (bv.dtype() != dtype || bv.numel() != count * k * m)) ||
        (av.defined() && (av.dtype() != dtype || av.numel() != count * rows * k)))
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
      for (int64_t i = 0; i < count; ++i) {
        // da [rows, k] = grad [rows, m] @ b^T;  db [k, m] = a^T @ grad
        if (da) product<T>(false, true, g + i * rows * m, b + i * k * m, da + i * rows * k, rows, k, m, 1.0, ta.add);
        if (db) product<T>(true, false, a + i * rows * k, g + i * rows * m, db + i * k * m, k, m, rows, 1.0, tb.add);
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
    batched_gemm<T>({a.impl()->data<T>(), a_batch, false}, {b.impl()->data<T>(), b_batch, false},
                    result.impl()->data<T>(), batch, n, m, k);
  });

  if (!detail::should_record({&a, &b})) {
    detail::check_forward(result, "matmul", where);
    return result;
  }
  // da needs b and db needs a: keep only what a gradient will read.
  Ref<detail::Node> node(new MatmulNode(b.requires_grad() ? detail::SavedTensor::input(a) : detail::SavedTensor(),
                                        a.requires_grad() ? detail::SavedTensor::input(b) : detail::SavedTensor(),
                                        a_vec, b_vec, a2, b2, out2, batch, n, m, k));
  node->name = "matmul";
  node->where = where;
  detail::attach_node(result, std::move(node), {&a, &b});
  detail::set_replay(result, {a, b}, [where](const std::vector<Tensor>& in) { return matmul(in[0], in[1], where); });
  return result;
}

namespace {

// linear's node. Not recorded (the usual backward), the three gradients are computed from grad's
// bytes ([rows, out]) and the saved operands in place with CBLAS's transpose flags:
//   dx [rows, in] = grad @ w,  dw [out, in] = grad^T @ x (the rows summed inside the gemm),
//   db [out] = grad summed over its rows.
// apply_fast writes them into the sweep's buffers (adding where a gradient is already there: beta =
// 1, no temporary) and offers dw to the sink as a product first (GradSink::defer: a fused update
// adds it into the weight itself). apply() is the rule for everything else: fresh buffers when not
// recorded, Tensor ops (differentiable again) under create_graph.
struct LinearNode final : detail::Node {
  LinearNode(detail::SavedTensor saved_x, detail::SavedTensor saved_w, int64_t r, int64_t i, int64_t o)
      : sx(std::move(saved_x)), sw(std::move(saved_w)), rows(r), in(i), out(o) {}

  detail::SavedTensor sx, sw;
  int64_t rows, in, out;

  // The gradients into dx/dw/db (null: not wanted), each overwritten or, with add_*, added to.
  template <class T>
  void products(const T* g, const T* w, const T* x, T* dx, bool add_dx, T* dw, bool add_dw, T* db, bool add_db) const {
    if (dx) product<T>(false, false, g, w, dx, rows, in, out, 1.0, add_dx);  // grad @ w
    if (dw) product<T>(true, false, g, x, dw, out, in, rows, 1.0, add_dw);   // grad^T @ x
    if (db) {
      if (!add_db) std::fill(db, db + out, T(0));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < out; ++j) db[j] += g[r * out + j];
    }
  }

  bool apply_fast(Tensor& grad, detail::GradSink& sink) override {
    if (grad.dtype() != dtype || grad.numel() != rows * out) return false;
    // The saved operands first (unpack checks their versions): a throw writes nothing.
    const Tensor w = needs(0) ? sw.unpack(*this) : Tensor();
    const Tensor x = needs(1) ? sx.unpack(*this) : Tensor();
    bool dw_deferred = false;
    if (needs(1) && rows > 0 && in > 0 && out > 0) {
      detail::GradSink::Product p{grad, x, true, false, out, in, rows};
      dw_deferred = sink.defer(next[1], p);
    }
    auto target = [&](int i) { return needs(i) ? sink.target(next[i], nullptr) : detail::GradSink::Target{}; };
    const detail::GradSink::Target tx = target(0);
    const detail::GradSink::Target tw = dw_deferred ? detail::GradSink::Target{} : target(1);
    const detail::GradSink::Target tb = target(2);
    detail::dispatch(dtype, [&]<class T>() {
      products<T>(grad.impl()->data<T>(), w.defined() ? w.impl()->data<T>() : nullptr,
                  x.defined() ? x.impl()->data<T>() : nullptr, static_cast<T*>(tx.data), tx.add,
                  static_cast<T*>(tw.data), tw.add, static_cast<T*>(tb.data), tb.add);
    });
    return true;
  }

  std::vector<Tensor> apply(const Tensor& grad) override {
    std::vector<Tensor> grads(next.size());
    if (!GradMode::enabled() && grad.dtype() == dtype && grad.numel() == rows * out) {
      if (needs(0)) grads[0] = detail::empty(next[0].shape(), dtype);
      if (needs(1)) grads[1] = detail::empty(Shape{out, in}, dtype);
      if (needs(2)) grads[2] = detail::empty(Shape{out}, dtype);
      const Tensor w = needs(0) ? sw.unpack(*this) : Tensor();
      const Tensor x = needs(1) ? sx.unpack(*this) : Tensor();
      detail::dispatch(dtype, [&]<class T>() {
        auto data = [](const Tensor& t) { return t.defined() ? t.impl()->data<T>() : nullptr; };
        products<T>(grad.impl()->data<T>(), data(w), data(x), data(grads[0]), false, data(grads[1]), false,
                    grads.size() > 2 ? data(grads[2]) : nullptr, false);
      });
      return grads;
    }
    const Tensor g2 = grad.dim() == 2 ? grad : reshape(grad, {rows, out});
    if (needs(0)) grads[0] = matmul(grad, sw.unpack(*this));
    if (needs(1)) {
      const Tensor xv = sx.unpack(*this);
      grads[1] = matmul(transpose(g2, 0, 1), xv.dim() == 2 ? xv : reshape(xv, {rows, in}));
    }
    if (needs(2)) grads[2] = sum(g2, {0});
    return grads;
  }

  void release_saved() override {
    sx.reset();
    sw.reset();
  }
};

}  // namespace

namespace detail {

void add_product(TensorImpl& c, const GradSink::Product& p, double alpha) {
  dispatch(c.dtype, [&]<class T>() {
    product<T>(p.ta, p.tb, p.a.impl()->data<T>(), p.b.impl()->data<T>(), c.data<T>(), p.n, p.m, p.k, alpha, true);
  });
}

}  // namespace detail

// Dense's op: the same product as matmul(x, transpose(w, 0, 1)) + b without the transposed copy of w
// (forward) and of dw (backward), which cost Dense a third of a small-batch training step.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Where where) {
  if (!x.defined() || !weight.defined()) throw std::invalid_argument("linear: x or weight is undefined");
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  if (ws.size() != 2)
    throw std::invalid_argument(fmt::format("linear: weight must be 2-D [out, in], got {} (x {})", ws.str(), xs.str()));
  const int64_t out = ws[0], in = ws[1];
  if (xs.size() == 0)
    throw std::invalid_argument(
        fmt::format("linear: x needs at least 1 dimension [..., in], got x {} with weight {}", xs.str(), ws.str()));
  if (xs[xs.size() - 1] != in)
    throw std::invalid_argument(fmt::format(
        "linear: x {} does not fit weight {}: x's last dimension vs weight's in_features ({} vs {}; x is [..., in], "
        "weight [out, in])",
        xs.str(), ws.str(), xs[xs.size() - 1], in));
  const bool has_bias = bias.defined();
  if (has_bias && !(bias.shape() == Shape{out}))
    throw std::invalid_argument(fmt::format("linear: bias {} does not fit weight {}: expected [{}], one per output",
                                            bias.shape().str(), ws.str(), out));
  const DType dtype = detail::result_dtype(x, weight, "linear");
  if (has_bias) detail::result_dtype(x, bias, "linear");
  // x's leading dims fold into the rows of one gemm (x is contiguous).
  int64_t rows = 1;
  for (int d = 0; d + 1 < static_cast<int>(xs.size()); ++d) rows *= xs[d];
  if (std::max({rows, in, out}) > INT_MAX)
    throw std::invalid_argument(
        fmt::format("linear: x {} with weight {} exceeds the dimensions BLAS can index", xs.str(), ws.str()));

  Shape out_shape = xs;
  out_shape.set(out_shape.size() - 1, out);
  Tensor result = detail::empty(out_shape, dtype);
  const Shape none;  // no batch: a single gemm
  detail::dispatch(dtype, [&]<class T>() {
    T* y = result.impl()->data<T>();
    const T* px = x.impl()->data<T>();
    const T* pw = weight.impl()->data<T>();
    const T* b = has_bias ? bias.impl()->data<T>() : nullptr;
    const auto ir = static_cast<int>(rows), iin = static_cast<int>(in), iout = static_cast<int>(out);
    if (rows == 1 && in > 0) {
      // One row (batch 1) is a matrix-vector product: gemv reads w once and packs nothing.
      gemv(false, pw, px, y, iout, iin);
    } else if (rows <= 16 && out >= 4 * rows && in > 0) {
      // A few rows against many outputs: OpenBLAS (0.3.21, Haswell kernels) computes y^T = w x^T
      // about a third faster than y = x w^T at these shapes (784 -> 256 at 2 to 16 rows); the
      // transpose back into y is folded into the bias loop.
      Tensor yt = detail::empty(Shape{out, rows}, dtype);
      T* t = yt.impl()->data<T>();
      gemm(false, true, pw, px, t, iout, ir, iin);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < out; ++j) y[r * out + j] = t[j * rows + r] + (b ? b[j] : T(0));
      return;
    } else {
      batched_gemm<T>({px, none, false}, {pw, none, true}, y, none, rows, out, in);
    }
    if (!b) return;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out; ++j) y[r * out + j] += b[j];
  });

  if (!detail::should_record({&x, &weight, &bias})) {
    detail::check_forward(result, "linear", where);
    return result;
  }
  // dx needs w and dw needs x; db needs neither.
  Ref<detail::Node> node(new LinearNode(weight.requires_grad() ? detail::SavedTensor::input(x) : detail::SavedTensor(),
                                        x.requires_grad() ? detail::SavedTensor::input(weight) : detail::SavedTensor(),
                                        rows, in, out));
  node->name = "linear";
  node->where = where;
  if (has_bias) {
    detail::attach_node(result, std::move(node), {&x, &weight, &bias});
    detail::set_replay(result, {x, weight, bias},
                       [where](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2], where); });
  } else {
    detail::attach_node(result, std::move(node), {&x, &weight});
    detail::set_replay(result, {x, weight},
                       [where](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor(), where); });
  }
  return result;
}

}  // namespace chainrule
