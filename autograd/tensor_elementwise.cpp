// Elementwise Tensor ops: forwards from autograd/ops.h applied per element with NumPy broadcasting,
// and each op's rule from the same entry recorded next to it. Also the non-differentiable masks and
// the in-place updates.
#include <cblas.h>
#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

#include "autograd/ops.h"
#include "autograd/tensor_elementwise_node.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using detail::TensorImpl;

namespace {

// A copy of `t` in dtype `d` with no history (numbers and masks only).
Tensor converted(const Tensor& t, DType d) {
  if (t.dtype() == d) return t;
  Tensor out = detail::empty(t.shape(), d);
  detail::dispatch(t.dtype(), [&]<class S>() {
    detail::dispatch(d, [&]<class D>() {
      const S* src = t.impl()->data<S>();
      D* dst = out.impl()->data<D>();
      const int64_t n = t.numel();  // once: numel() is out of line
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
    });
  });
  return out;
}

[[noreturn, gnu::cold]] void throw_undefined(const char* op) {
  throw std::invalid_argument(fmt::format("{}: an operand is undefined", op));
}
void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw_undefined(op);
}

template <class T, class F>
void unary_loop(const T* x, T* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class T, class F>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.impl()->data<T>();
  const T* pb = b.impl()->data<T>();
  T* po = out.impl()->data<T>();
  const TensorImpl &ia = *a.impl(), &ib = *b.impl(), &io = *out.impl();
  detail::for_each_operand(io.shape, io.numel, ia.shape, ia.numel, ib.shape, ib.numel,
                           [&](int64_t o, int64_t i, int64_t j) { po[o] = f(pa[i], pb[j]); });
}

// A new tensor of the shape a and b broadcast to; out of line, so that the common case (equal
// shapes) builds no Shape of its own.
[[gnu::noinline]] Tensor empty_broadcast(const Shape& a, const Shape& b, DType d, const char* op) {
  return detail::empty(broadcast_shapes(a, b, op), d);
}

// out = f(a, b) elementwise, without recording.
template <class F>
Tensor binary_kernel(const Tensor& a, const Tensor& b, const char* op, F f) {
  check_defined(a, op);
  check_defined(b, op);
  const TensorImpl &ia = *a.impl(), &ib = *b.impl();
  const DType d = ia.dtype == ib.dtype ? ia.dtype : detail::result_dtype(a, b, op);
  Tensor out = ia.shape == ib.shape ? detail::empty(ia.shape, d, ia.numel) : empty_broadcast(ia.shape, ib.shape, d, op);
  // Two calls rather than one lambda taking the operands: the lambda measured +10 instructions per
  // one-element op (callgrind), and the common case must build no converted temporaries.
  if (ia.dtype == ib.dtype) {
    detail::dispatch(d, [&]<class T>() { binary_loop<T>(a, b, out, [&](T x, T y) { return f(x, y); }); });
  } else {
    // A number meets a tensor of the other dtype: the number, converted, takes part.
    const Tensor ca = converted(a, d), cb = converted(b, d);
    detail::dispatch(d, [&]<class T>() { binary_loop<T>(ca, cb, out, [&](T x, T y) { return f(x, y); }); });
  }
  if (ia.wrapped_number && ib.wrapped_number) out.impl()->wrapped_number = true;
  return out;
}

// Records out = Op(inputs) with the node that keeps what Op's rule reads (ops::Uses).
template <class Op, int Arity>
void record_elementwise(Tensor& out, const Tensor& a, const Tensor* b, const Where& where) {
  auto* node = new detail::ElementwiseNode<Op, Arity>(out, a, b, where);
  Ref<detail::Node> ref(node);
  // attach_node's steps, unrolled for one or two inputs (the inline edges hold both).
  detail::add_edge<true>(*node, a);
  if (b) detail::add_edge<true>(*node, *b);
  detail::attach_shaped_node(out, ref);
}

template <class Op>
Tensor unary(const Tensor& x, const Where& where) {
  check_defined(x, Op::name.data());
  const TensorImpl& ix = *x.impl();
  Tensor out = detail::empty(ix.shape, ix.dtype, ix.numel);
  detail::dispatch(ix.dtype, [&]<class T>() {
    unary_loop<T>(ix.data<T>(), out.impl()->data<T>(), ix.numel, [](T v) { return Op::f(v); });
  });
  out.impl()->wrapped_number = ix.wrapped_number;
  if (detail::should_record({&x})) {
    record_elementwise<Op, 1>(out, x, nullptr, where);
    detail::set_replay(out, {x}, [where](const std::vector<Tensor>& in) { return unary<Op>(in[0], where); });
  } else {
    detail::check_forward(out, Op::name, where);
  }
  return out;
}

template <class Op>
Tensor binary(const Tensor& a, const Tensor& b, const Where& where) {
  Tensor out = binary_kernel(a, b, Op::name.data(), [](auto x, auto y) { return Op::f(x, y); });
  if (!detail::should_record({&a, &b})) {
    detail::check_forward(out, Op::name, where);
    return out;
  }
  record_elementwise<Op, 2>(out, a, &b, where);
  detail::set_replay(out, {a, b}, [where](const std::vector<Tensor>& in) { return binary<Op>(in[0], in[1], where); });
  return out;
}

}  // namespace

Tensor operator+(const Tensor& a, Located<Tensor> b) { return binary<ops::Add>(a, b.value(), b.where); }
Tensor operator-(const Tensor& a, Located<Tensor> b) { return binary<ops::Sub>(a, b.value(), b.where); }
Tensor operator*(const Tensor& a, Located<Tensor> b) { return binary<ops::Mul>(a, b.value(), b.where); }
Tensor operator/(const Tensor& a, Located<Tensor> b) { return binary<ops::Div>(a, b.value(), b.where); }
Tensor pow(const Tensor& a, const Tensor& b, Where w) { return binary<ops::Pow>(a, b, w); }
Tensor operator-(Located<Tensor> x) { return unary<ops::Neg>(x.value(), x.where); }
Tensor exp(const Tensor& x, Where w) { return unary<ops::Exp>(x, w); }
Tensor log(const Tensor& x, Where w) { return unary<ops::Log>(x, w); }
Tensor sqrt(const Tensor& x, Where w) { return unary<ops::Sqrt>(x, w); }
Tensor sigmoid(const Tensor& x, Where w) { return unary<ops::Sigmoid>(x, w); }
Tensor tanh(const Tensor& x, Where w) { return unary<ops::Tanh>(x, w); }
Tensor relu(const Tensor& x, Where w) { return unary<ops::Relu>(x, w); }
Tensor abs(const Tensor& x, Where w) { return unary<ops::Abs>(x, w); }
Tensor erf(const Tensor& x, Where w) { return unary<ops::Erf>(x, w); }
Tensor expm1(const Tensor& x, Where w) { return unary<ops::Expm1>(x, w); }
Tensor log1p(const Tensor& x, Where w) { return unary<ops::Log1p>(x, w); }

// ---- masks: never recorded ----

Tensor step(const Tensor& x) {
  return binary_kernel(x, Tensor(0.0), "step", [](auto v, auto) { return ops::step(v); });
}
Tensor sign(const Tensor& x) {
  return binary_kernel(x, Tensor(0.0), "sign", [](auto v, auto) {
    using T = decltype(v);
    return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0));
  });
}
Tensor equal(const Tensor& a, const Tensor& b) {
  return binary_kernel(a, b, "equal", [](auto x, auto y) { return x == y ? decltype(x)(1) : decltype(x)(0); });
}
Tensor isnan(const Tensor& x) {
  return binary_kernel(x, Tensor(0.0), "isnan", [](auto v, auto) { return v != v ? decltype(v)(1) : decltype(v)(0); });
}

Tensor where(const Tensor& condition, const Tensor& x, const Tensor& y, Where at) {
  check_defined(condition, "where");
  check_defined(x, "where");
  check_defined(y, "where");
  const DType d = detail::result_dtype(x, y, "where");
  const Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), x.shape(), "where"), y.shape(), "where");
  // The condition's values in the select's own tensor (a later change to condition cannot change
  // the backward), in the result's dtype.
  Tensor c = condition.shape() == shape ? condition.detach().clone() : expand(condition.detach(), shape);
  if (c.dtype() != d) c = c.to(d);
  // Each operand broadcast (recorded: expand's backward sums the gradient back to its shape).
  auto operand = [&](const Tensor& t) { return expand(t.dtype() == d ? t : t.to(d), shape, at); };
  const Tensor xs = operand(x), ys = operand(y);
  Tensor out = detail::empty(shape, d);
  detail::dispatch(d, [&]<class T>() {
    const T *pc = c.impl()->data<T>(), *px = xs.impl()->data<T>(), *py = ys.impl()->data<T>();
    T* po = out.impl()->data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) po[i] = pc[i] != 0 ? px[i] : py[i];
  });
  // A select between plain numbers stays one (it adopts another operand's dtype later), as the
  // other ops' results do.
  out.impl()->wrapped_number = x.impl()->wrapped_number && y.impl()->wrapped_number;
  if (!detail::should_record({&xs, &ys})) {
    detail::check_forward(out, "where", at);
    return out;
  }
  detail::record(out, "where", {&xs, &ys}, [c](const Tensor& grad, detail::Node& self) {
    const Tensor zero(0.0);
    return std::vector<Tensor>{self.needs(0) ? where(c, grad, zero) : Tensor(),
                               self.needs(1) ? where(c, zero, grad) : Tensor()};
  }, at);
  detail::set_replay(out, {xs, ys}, [c, at](const std::vector<Tensor>& in) { return where(c, in[0], in[1], at); });
  return out;
}

// Each selects where the rule is 0, so that neither an infinite incoming gradient nor a NaN in the
// formula there turns into NaN; pow's formula also takes a safe base there (1), so that the
// derivative of the untaken branch is finite too.
Tensor relu_grad(const Tensor& grad, const Tensor& x) { return where(step(x), grad, Tensor(0.0)); }
Tensor pow_grad_a(const Tensor& grad, const Tensor& a, const Tensor& b) {
  const Tensor m = equal(b, Tensor(0.0));  // b == 0: a^0 is constant in a
  const Tensor safe_a = where(m, Tensor(1.0), a);
  return where(m, Tensor(0.0), grad * b * pow(safe_a, b - 1.0));
}
Tensor pow_grad_b(const Tensor& grad, const Tensor& a, const Tensor& b, const Tensor& result) {
  const Tensor m = equal(a, Tensor(0.0)) * (1.0 - step(-b));  // a == 0 and b >= 0: a^b is 0 or 1
  const Tensor safe_a = where(m, Tensor(1.0), a);
  return where(m, Tensor(0.0), grad * result * log(safe_a));
}

// ---- in-place updates ----

namespace {

// self = op(self, o). Not recording, `kernel(self_element, o_element)` writes straight into self (one
// pass; elementwise, so o may even share self's storage); recording, Op is recorded against a
// snapshot of self, with `operand(o)` as its second input (add_'s alpha * o; o by default).
template <class Op, class F, class Operand = std::identity>
Tensor& in_place(Tensor& self, const Tensor& o, const char* op, const Where& where, F kernel, Operand operand = {}) {
  check_defined(self, op);
  check_defined(o, op);
  TensorImpl* s = self.impl();
  const Shape shape = broadcast_shapes(s->shape, o.shape(), op);
  if (!(shape == s->shape))
    throw std::invalid_argument(fmt::format("{}: the result of shape {} does not fit the tensor's shape {}",
                                            op, shape.str(), s->shape.str()));
  if (detail::result_dtype(self, o, op) != s->dtype)
    throw std::invalid_argument(fmt::format("{}: dtype mismatch: {} and {}", op, dtype_name(s->dtype),
                                            dtype_name(o.dtype())));
  const bool recording = detail::should_record({&self, &o});
  if (recording && s->requires_grad && !s->grad_fn)
    throw std::logic_error(fmt::format(
        "{}: a leaf tensor that requires grad (shape {}) is being modified in place while recording; "
        "wrap the update in NoGradGuard (as optimizers do)",
        op, s->shape.str()));
  if (!recording) {
    Tensor o_converted;  // only when a number meets a tensor of the other dtype
    const Tensor& co = o.dtype() == s->dtype ? o : (o_converted = converted(o, s->dtype));
    // Anomaly mode checks the result before it overwrites anything (an optimizer's update that
    // overflows throws with the parameters as they were, as the update's other ops do).
    Tensor staged;  // only under anomaly mode: without it the loop writes into self, no handle copied
    Tensor& into = AnomalyMode::enabled() ? (staged = detail::empty(s->shape, s->dtype)) : self;
    detail::dispatch(s->dtype, [&]<class T>() { binary_loop<T>(self, co, into, [&](T x, T y) { return kernel(x, y); }); });
    if (into.impl() != s) {
      detail::check_forward(into, op, where);
      std::memcpy(s->storage->data, into.impl()->storage->data, static_cast<size_t>(s->numel * dtype_size(s->dtype)));
    }
    ++s->storage->version;
    return self;
  }
  // Record op(old self, o) against a snapshot of self, then move the result's values and history
  // into self: handles to self see the new values and backward sees the true history.
  Tensor old = self.detach();
  old.impl()->grad_fn = s->grad_fn;
  old.impl()->requires_grad = s->requires_grad;
  // o naming self's own tensor (`y *= y`, another handle to y, an op that returned y as it was)
  // stands for self's values before the update, which are old's: recording o itself would make
  // self's new history save self, a cycle of counted references that is never freed.
  const Tensor result = binary<Op>(old, operand(o.impl() == s ? old : o), where);
  std::memcpy(s->storage->data, result.impl()->storage->data,
              static_cast<size_t>(s->numel * dtype_size(s->dtype)));
  ++s->storage->version;
  s->grad_fn = result.impl()->grad_fn;
  s->requires_grad = true;
  return self;
}

template <class Op>
Tensor& in_place(Tensor& self, const Tensor& o, const char* op, const Where& where) {
  return in_place<Op>(self, o, op, where, [](auto x, auto y) { return Op::f(x, y); });
}

}  // namespace

Tensor& Tensor::operator+=(Located<Tensor> o) { return in_place<ops::Add>(*this, o.value(), "operator+=", o.where); }
Tensor& Tensor::operator-=(Located<Tensor> o) { return in_place<ops::Sub>(*this, o.value(), "operator-=", o.where); }
Tensor& Tensor::operator*=(Located<Tensor> o) { return in_place<ops::Mul>(*this, o.value(), "operator*=", o.where); }

Tensor& Tensor::add_(const Tensor& other, double alpha, Where where) {
  check_defined(*this, "add_");
  check_defined(other, "add_");
  const bool recording = detail::should_record({this, &other});
  // The optimizers' update (same shape and dtype, another buffer, nothing recording) is BLAS's axpy:
  // vectorised for the machine, and split over OpenBLAS's threads when it is long. It may fuse the
  // multiply and the add (one rounding instead of two).
  TensorImpl* s = impl();
  const TensorImpl* o = other.impl();
  if (!recording && !AnomalyMode::enabled() && o->shape == s->shape && o->dtype == s->dtype &&
      o->storage != s->storage && s->numel <= std::numeric_limits<blasint>::max()) {
    const auto n = static_cast<blasint>(s->numel);
    if (s->dtype == DType::float32)
      cblas_saxpy(n, static_cast<float>(alpha), o->data<float>(), 1, s->data<float>(), 1);
    else
      cblas_daxpy(n, alpha, o->data<double>(), 1, s->data<double>(), 1);
    ++s->storage->version;
    return *this;
  }
  // Otherwise alpha folds into the one in-place pass; recording, the history is self + alpha * other.
  auto kernel = [alpha](auto x, auto y) { return x + static_cast<decltype(x)>(alpha) * y; };
  if (alpha == 1.0 || !recording) return in_place<ops::Add>(*this, other, "add_", where, kernel);
  return in_place<ops::Add>(*this, other, "add_", where, kernel,
                            [&](const Tensor& t) { return t * Located<Tensor>(alpha, where); });
}

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max, Where at) {
  check_defined(x, "clamp");
  if (!min && !max) throw std::invalid_argument("clamp: at least one of min and max must be given");
  // Where bound b applies to y (below a min, above a max): step(sign * (b - y)), 0 where y is
  // NaN (step(NaN) is 1), so NaN stays NaN; a NaN bound applies everywhere. Not recorded.
  const auto applies = [](double sign, double bound, const Tensor& y) {
    NoGradGuard no_grad;
    return step((Tensor(bound) - y) * sign) - isnan(y);
  };
  Tensor y = x;
  if (min) y = where(applies(1, *min, y), Tensor(*min), y, at);
  if (max) y = where(applies(-1, *max, y), Tensor(*max), y, at);
  return y;
}

}  // namespace chainrule
