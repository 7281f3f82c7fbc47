// linear: Dense's op, matmul with a weight read transposed in place plus a bias, through CBLAS, and
// its rule: dx = grad @ w, dw = grad^T @ x, db = sum_rows(grad). A backward that is not recorded
// (the usual one) computes the products with CBLAS's transpose flags, reading the saved operands in
// place; a recorded one (create_graph) writes them with Tensor ops so that they can be
// differentiated again.
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
    if (db) bias_gradient(g, db, add_db);
  }

  // db[j] (+)= sum over the rows of g[r][j]: up to kRows rows in T (the loop vectorises; a
  // training batch), more by sum_onto (in double for float32, rounded once: float32 adding a
  // million rows one after another was 1% off).
  template <class T>
  void bias_gradient(const T* g, T* db, bool add_db) const {
    constexpr int64_t kRows = 256;
    if (rows > kRows) return detail::sum_onto(g, Shape{rows, out}, db, Shape{out}, add_db);
    if (!add_db) std::fill(db, db + out, T(0));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out; ++j) db[j] += g[r * out + j];
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
    } else if (b && rows > 0 && out > 0 && in > 0) {
      // The bias rows first, then one gemm adding x w^T into them (beta = 1, as PyTorch's addmm):
      // with beta = 0 OpenBLAS clears y in a pass of its own, and the bias was one more.
      for (int64_t r = 0; r < rows; ++r) std::copy(b, b + out, y + r * out);
      gemm(false, true, px, pw, y, ir, iout, iin, 1.0, 1.0);
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
  Ref<detail::Node> node(new LinearNode(weight.requires_grad() ? detail::SavedTensor::input(x, 0) : detail::SavedTensor(),
                                        x.requires_grad() ? detail::SavedTensor::input(weight, 1) : detail::SavedTensor(),
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
