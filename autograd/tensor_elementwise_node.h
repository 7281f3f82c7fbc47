#pragma once
// Internal: the recorded node of an elementwise Tensor op (tensor_elementwise.cpp). It keeps only
// the values its rule in autograd/ops.h reads (ops::Uses) and runs that one rule in two ways:
//   - apply(): on Tensors, so that create_graph records the backward pass (and traces, anomaly
//     mode and gradcheck see Tensor gradients);
//   - apply_fast(): per element on plain numbers, writing each input's gradient straight into the
//     sweep's buffer (GradSink::target) in one loop, with no temporary tensors; a one-element
//     output (every operand then holds one number) skips the loops' set-up (run_one).
// Both call the same Op::dx / Op::da / Op::db: the derivative is written once.
#include <type_traits>
#include <utility>
#include <vector>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"

namespace chainrule::detail {

// Calls f(out_index, a_index, b_index) for every element of the broadcast shape `out` (n elements)
// of operands of shapes a and b (na and nb elements), with loops of their own for the common cases
// (one element, same shape, one side a single element). The counts come from the callers, who have them.
template <class F>
void for_each_operand(const Shape& out, int64_t n, const Shape& a, int64_t na, const Shape& b, int64_t nb,
                      F&& f) {
  if (n == 1) {  // one element: so has each operand (n == 0 falls through to loops that do nothing)
    f(int64_t{0}, int64_t{0}, int64_t{0});
  } else if (na == n && nb == n) {
    for (int64_t i = 0; i < n; ++i) f(i, i, i);
  } else if (na == n && nb == 1) {
    for (int64_t i = 0; i < n; ++i) f(i, i, int64_t{0});
  } else if (na == 1 && nb == n) {
    for (int64_t i = 0; i < n; ++i) f(i, int64_t{0}, i);
  } else {
    for_each_broadcast(out, a, b, f);
  }
}

// A value Op's rule does not read: the node keeps no SavedTensor for it, so has none to clear,
// check or destroy.
struct NotSaved {};
template <bool Used>
using SavedIf = std::conditional_t<Used, SavedTensor, NotSaved>;

// What the node keeps of input `index` t (or of the output, with index -1), built in place in the
// node's member (a prvalue: no SavedTensor is made and then moved). `needed`: the rules of the
// inputs that need a gradient read it (else an empty SavedTensor).
template <bool Used>
SavedIf<Used> save_if(const Tensor* t, int index, bool needed) {
  if constexpr (Used) {
    if (!needed) return {};
    return index < 0 ? SavedTensor::output(*t) : SavedTensor::input(*t, static_cast<uint32_t>(index));
  } else {
    return {};
  }
}

inline Tensor unpack(const SavedTensor& s, Node& self) { return s.saved() ? s.unpack(self) : Tensor(); }
inline Tensor unpack(NotSaved, Node&) { return Tensor(); }
inline bool is_saved(const SavedTensor& s) { return s.saved(); }
inline bool is_saved(NotSaved) { return false; }

// The values Op's rules read when input 0 (need0) and input 1 (need1) need a gradient. A unary
// node exists only when its input needs one.
template <class Op, int Arity>
constexpr ops::Uses reads(bool need0, bool need1) {
  if constexpr (Arity == 1) return Op::uses;
  else return (need0 ? Op::uses_da : ops::Uses{}) | (need1 ? Op::uses_db : ops::Uses{});
}

template <class Op, int Arity>
struct ElementwiseNode final : Node {
  // Only what Op's rule reads (b is never read for unary ops).
  [[no_unique_address]] SavedIf<Op::uses.a> a;
  [[no_unique_address]] SavedIf<Op::uses.b> b;
  [[no_unique_address]] SavedIf<Op::uses.result> result;

  // out = Op(x) or Op(x, *y) (y null for unary ops), recorded at `where`: the node's shape and dtype
  // are out's.
  ElementwiseNode(const Tensor& out, const Tensor& x, const Tensor* y, const Where& where)
      : ElementwiseNode(out, x, y, where,
                        reads<Op, Arity>(x.impl()->requires_grad, y && y->impl()->requires_grad)) {}

  std::vector<Tensor> apply(const Tensor& grad) override {
    const Tensor A = unpack(a, *this), R = unpack(result, *this);
    if constexpr (Arity == 1) {
      return {Op::dx(grad, A, R)};
    } else {
      const Tensor B = unpack(b, *this);
      std::vector<Tensor> g(2);
      if (needs(0)) g[0] = Op::da(grad, A, B, R);
      if (needs(1)) g[1] = Op::db(grad, A, B, R);
      return g;
    }
  }

  bool apply_fast(Tensor& grad, GradSink& sink) override {
    const DType d = grad.impl()->dtype;
    // A saved operand of another dtype is a plain number (a float64 constant in a float32 op), one
    // element that run() converts; anything else of another dtype takes the Tensor rule. What is
    // saved is known from Op::uses (the output always has the gradient's dtype).
    if constexpr (Op::uses.a)
      if (a.saved() && a.dtype(*this) != d && a.numel(*this) != 1) return false;
    if constexpr (Op::uses.b)
      if (b.saved() && b.dtype(*this) != d && b.numel(*this) != 1) return false;
    dispatch(d, [&]<class T>() {
      if (grad.impl()->numel == 1) run_one<T>(grad, sink);
      else run<T>(grad, sink);
    });
    return true;
  }

  void release_saved() override {
    if constexpr (Op::uses.a) a.reset();
    if constexpr (Op::uses.b) b.reset();
    if constexpr (Op::uses.result) result.reset();
  }

 private:
  // `needed`: reads() for the inputs that need a gradient (the edges are added after this).
  ElementwiseNode(const Tensor& out, const Tensor& x, const Tensor* y, const Where& where, ops::Uses needed)
      : Node(out.impl()->shape, out.impl()->dtype, Op::name, where),
        a(save_if<Op::uses.a>(&x, 0, needed.a)),
        b(save_if<Op::uses.b>(y, 1, needed.b)),
        result(save_if<Op::uses.result>(&out, -1, needed.result)) {}

  // Input i's derivative at one element.
  template <int I, class T>
  static T rule(T g, T x, T y, T r) {
    if constexpr (Arity == 1) return static_cast<T>(Op::dx(g, x, r));
    else if constexpr (I == 0) return static_cast<T>(Op::da(g, x, y, r));
    else return static_cast<T>(Op::db(g, x, y, r));
  }

  // The values of saved input s in T, after the version check: its own bytes, or `number`
  // holding its one value converted (a plain number of the other dtype; apply_fast checked it).
  template <class T>
  const T* values(const SavedTensor& s, T& number) const {
    const void* p = s.storage(*this).data;
    const DType d = s.dtype(*this);
    if (d == dtype_of<T>()) return static_cast<const T*>(p);
    number = d == DType::float32 ? static_cast<T>(*static_cast<const float*>(p))
                                 : static_cast<T>(*static_cast<const double*>(p));
    return &number;
  }

  // Input e's one-element gradient v, for a one-element output whose gradient is g: into the
  // sweep's buffer (which `donor`, grad's own, may become), or, for an input of another shape
  // ([] against [1]) or dtype, as a tensor that the sink sums back and converts.
  template <class T>
  static void hand_on_one(Edge& e, T v, const TensorImpl& g, Tensor* donor, GradSink& sink) {
    // Every dim of a one-element shape is 1: two such shapes agree when their ranks do.
    if (e.dtype == g.dtype && e.shape().size() == g.shape.size()) {
      const GradSink::Target t = sink.target(e, donor);
      if (T* dst = static_cast<T*>(t.data)) *dst = t.add ? *dst + v : v;
      return;
    }
    Tensor full = empty(g.shape, g.dtype);
    *full.impl()->data<T>() = v;
    sink.add(e, full);
  }

  // A one-element output, and so one element per operand: each input's derivative is one number,
  // all of them computed (after the version checks) before the first is handed on, so grad's
  // buffer may go to any input. The same rules as run's loops, without their set-up.
  template <class T>
  void run_one(Tensor& grad, GradSink& sink) {
    const TensorImpl& g = *grad.impl();  // outlives the call even if its buffer is handed on
    T x = 0, y = 0, r = 0, number = 0;
    if constexpr (Op::uses.a)
      if (a.saved()) x = *values(a, number);
    if constexpr (Op::uses.b)
      if (b.saved()) y = *values(b, number);
    if constexpr (Op::uses.result)
      if (result.saved()) r = *static_cast<const T*>(result.storage(*this).data);
    const T gv = *g.data<T>();
    const bool need0 = needs(0);
    const T v0 = need0 ? rule<0>(gv, x, y, r) : T(0);
    if constexpr (Arity == 2)
      if (needs(1)) hand_on_one(next[1], rule<1>(gv, x, y, r), g, need0 ? nullptr : &grad, sink);
    if (need0) hand_on_one(next[0], v0, g, &grad, sink);
  }

  // run_saved for what this node saved (kA, kB, kR: a, b, the result), each case compiled with
  // its values' strides known: all of Op::uses when every input needs a gradient, fewer otherwise.
  template <class T>
  void run(Tensor& grad, GradSink& sink) {
    const int saved = is_saved(a) | is_saved(b) << 1 | is_saved(result) << 2;
    constexpr int kUses = Op::uses.a | Op::uses.b << 1 | Op::uses.result << 2;
    [&]<int... M>(std::integer_sequence<int, M...>) {
      auto one = [&]<int kM>() {
        if constexpr ((kM & ~kUses) == 0)
          if (saved == kM) run_saved<T, (kM & 1) != 0, (kM & 2) != 0, (kM & 4) != 0>(grad, sink);
      };
      (one.template operator()<M>(), ...);
    }(std::make_integer_sequence<int, 8>());
  }

  // Input I's gradient is the incoming gradient itself (add's both, sub's first): a broadcast
  // input's is grad summed, and grad's own buffer, handed on, needs no pass.
  template <int I>
  static constexpr bool passes_grad = std::is_same_v<Op, ops::Add> || (std::is_same_v<Op, ops::Sub> && I == 0);

  // Out of line: inlined, its loops' registers and stack would weigh on run_one too.
  template <class T, bool kA, bool kB, bool kR>
  [[gnu::noinline]] void run_saved(Tensor& grad, GradSink& sink) {
    static constexpr T kUnused = 0;  // stands for every value the rule does not read (stride 0)
    // grad's header outlives this call even if its buffer is handed on (the sink then holds it).
    const TensorImpl& g = *grad.impl();
    const Shape& out = g.shape;
    const DType d = g.dtype;
    // The version checks happen here, before any gradient is written.
    const T *pa = &kUnused, *pb = &kUnused, *pr = &kUnused, *pg = g.data<T>();
    const Shape *sa = &out, *sb = &out;
    const int64_t n = g.numel;
    int64_t na = n, nb = n;
    T a_number = 0, b_number = 0;
    if constexpr (kA) {
      pa = values(a, a_number);
      sa = &a.shape(*this);
      na = a.numel(*this);
    }
    if constexpr (kB) {
      pb = values(b, b_number);
      sb = &b.shape(*this);
      nb = b.numel(*this);
    }
    if constexpr (kR) pr = static_cast<const T*>(result.storage(*this).data);
    // The lowest input runs last, so it may take over grad's buffer (the others still read it).
    const int last = needs(0) ? 0 : 1;
    constexpr int64_t ka = kA, kb = kB, kr = kR;
    auto one = [&]<int I>() {
      if (!needs(I)) return;
      Edge& e = next[I];
      auto at = [&](int64_t o, int64_t i, int64_t j) { return rule<I>(pg[o], pa[i * ka], pb[j * kb], pr[o * kr]); };
      if (e.dtype == d && e.shape() == out) {
        const GradSink::Target t = sink.target(e, I == last ? &grad : nullptr);
        T* dst = static_cast<T*>(t.data);
        if (!dst) return;
        if (passes_grad<I> && !t.add && dst == pg) return;  // grad's own buffer, already the gradient
        if (t.add)
          for_each_operand(out, n, *sa, na, *sb, nb, [&](int64_t o, int64_t i, int64_t j) { dst[o] += at(o, i, j); });
        else
          for_each_operand(out, n, *sa, na, *sb, nb, [&](int64_t o, int64_t i, int64_t j) { dst[o] = at(o, i, j); });
      } else if (passes_grad<I> && e.dtype == d) {
        sink.add(e, grad);  // a broadcast input whose gradient is grad: the sink sums grad itself
      } else {
        // A broadcast input: the full-size gradient, summed back to e.shape() by the sink.
        Tensor full = empty(out, d);
        T* dst = full.impl()->data<T>();
        for_each_operand(out, n, *sa, na, *sb, nb, [&](int64_t o, int64_t i, int64_t j) { dst[o] = at(o, i, j); });
        sink.add(e, full);
      }
    };
    if constexpr (Arity == 2) one.template operator()<1>();
    one.template operator()<0>();
  }
};

}  // namespace chainrule::detail
