// Scalar handles and the Scalar ops: each op computes its value with the forward of autograd/ops.h
// and records one tape entry; its derivative is the rule next to that forward.
#include "autograd/scalar.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "autograd/anomaly.h"
#include "autograd/ops.h"
#include "autograd/scalar_tape.h"

namespace chainrule {

using detail::LeafCell;
using detail::ScalarOp;
using detail::ScalarTape;

Scalar Scalar::leaf(double value, bool requires_grad) {
  Scalar s(value);
  s.leaf_ = new LeafCell{value, 0.0, 1, requires_grad, 0, 0, nullptr, {}};
  return s;
}

double Scalar::interior_grad() const {
  if (record_ == kNoRecord) return 0.0;
  const detail::TapeState& tape = detail::tape_state;
  if (!attached())
    throw std::logic_error(
        "Scalar::grad: this interior node's graph was released (backward() freed it and a new graph "
        "has been recorded since), or it was recorded on another thread. Read interior gradients right "
        "after backward(), on the thread that recorded the graph, or keep the graph alive with "
        "BackwardOptions{.retain_graph = true}.");
  return tape.records[record_].grad;
}

Scalar Scalar::grad_scalar() const {
  if (!leaf_) throw std::logic_error("Scalar::grad_scalar: only leaves keep a recorded gradient");
  Scalar* g = leaf_->grad_graph;
  if (!g) return Scalar(leaf_->grad);
  // Contributions from sweeps that did not record (a plain backward(), a leaf's own backward())
  // reach only the number: they join the recorded gradient here, as a constant term, so that it
  // is the whole gradient (the fast sweep's loop does not look for a recorded gradient).
  if (const double plain = leaf_->grad - g->value(); plain != 0.0) {
    const GradModeGuard recording(true);
    *g = *g + plain;
  }
  return *g;
}

void Scalar::throw_not_leaf(const char* what) {
  throw std::logic_error(fmt::format(
      "Scalar::{}: only leaves (Scalar::leaf) can be changed in place; this Scalar is a constant or "
      "an interior node",
      what));
}


void Scalar::set_requires_grad(bool on) {
  if (!leaf_) throw_not_leaf("set_requires_grad");
  leaf_->requires_grad = on;
  leaf_->cached_generation = 0;
}

void Scalar::drop_grad_graph() {
  delete leaf_->grad_graph;
  leaf_->grad_graph = nullptr;
}

void Scalar::backward(double seed, BackwardOptions options) const {
  if (leaf_) {
    if (!leaf_->requires_grad)
      throw std::logic_error("Scalar::backward: this leaf does not require grad (requires_grad = false)");
    leaf_->grad += seed;
    return;
  }
  if (record_ == kNoRecord)
    throw std::logic_error(
        "Scalar::backward: this Scalar does not require grad: it is a constant (no leaf with "
        "requires_grad contributed to it, or it was computed under NoGradGuard)");
  if (!attached())
    throw std::logic_error(
        "Scalar::backward: trying to backward through the graph a second time: this graph was freed "
        "by an earlier backward(). Pass BackwardOptions{.retain_graph = true} to the first backward() "
        "if you need to sweep the same graph twice. (Or this Scalar was recorded on another thread: a "
        "graph belongs to the thread that recorded it.)");
  const ScalarTape::Seed s{record_, seed};
  ScalarTape::current().backward({&s, 1}, options);
}


Scalar& Scalar::set_label(std::string label) {
  if (leaf_) {
    leaf_->label = std::move(label);
  } else if (attached()) {
    ScalarTape::current().set_label(record_, std::move(label));
  } else {
    throw std::logic_error("Scalar::set_label: constants and released nodes cannot be labelled");
  }
  return *this;
}

std::string Scalar::label() const {
  if (leaf_) return leaf_->label;
  if (attached()) return ScalarTape::current().label_of(record_);
  return {};
}

void detail::ScalarAccess::check_constant(double value, std::string_view op, Where where) {
  if (!std::isfinite(value)) detail::throw_anomaly("forward", op, where, value);
}

Scalar detail::ScalarAccess::record_slow(ScalarOp op, std::string_view name, const Scalar& x, const Scalar* y,
                                         double value, Where where) {
  if (!GradMode::enabled()) return constant(value, name, where);
  begin_op();
  const uint32_t a = operand(x);
  const uint32_t b = y ? operand(*y) : a;
  ScalarTape::current().note_location(op, a, value, where);
  return push(op, a, b, value);
}

namespace {
// dot's second operand: a Scalar, or a plain number (a constant).
double value_of(const Scalar& x) { return x.value(); }
double value_of(double x) { return x; }
bool requires_grad_of(const Scalar& x) { return x.requires_grad(); }
bool requires_grad_of(double) { return false; }
}  // namespace

template <class B>
Scalar detail::ScalarAccess::dot(std::span<const Scalar> a, std::span<const B> b, const Scalar* c, Where where) {
  constexpr std::string_view name = ops::Dot::name;
  if (a.size() != b.size())
    throw std::invalid_argument(
        fmt::format("dot: a has {} elements and b has {}; they must have the same length", a.size(), b.size()));
  if (a.size() > (kConstantTag - 2) / 2)
    throw std::length_error(fmt::format("dot: {} pairs of operands are more than one node can hold", a.size()));
  const Scalar* const pa = a.data();
  const B* const pb = b.data();
  const std::size_t n = a.size();
  double y = -0.0;  // ops::Dot::f, on the operands in place (-0: the identity of +)
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    y += pa[i].value() * value_of(pb[i]);
    any |= pa[i].requires_grad() | requires_grad_of(pb[i]);
  }
  if (c) {
    y += c->value();
    any |= c->requires_grad();
  }
  if (!any || !GradMode::enabled()) return constant(y, name, where);
  begin_op();
  const auto count = static_cast<uint32_t>(2 * n + (c ? 1 : 0));
  TapeState& t = tape_state;
  if (t.list_capacity - t.list_count < count) grow_lists(count);
  if (t.constant_capacity - t.constant_count < count) grow_constants(count);
  // The loop keeps the constants' end in locals (room for one per operand is there); a leaf's first
  // use in this graph, a frozen leaf or a stale handle goes through operand(), which may append.
  // (A copy of operand()'s common cases, on purpose: through operand() and append_constant, which
  // store the tape's counts at every operand, the lecture with dot took 1.70 us, not 1.46 us.)
  uint32_t* const list = t.lists + t.list_count;
  const uint64_t generation = t.generation;
  double* constants = t.constants;
  uint32_t constant_count = t.constant_count;
  auto take_number = [&](double x) -> uint32_t {
    constants[constant_count] = x;
    return constant_count++ | kConstantTag;
  };
  auto take = [&](const Scalar& x) -> uint32_t {
    if (x.generation_ == generation) return x.record_;
    if (x.leaf_ != nullptr && x.leaf_->cached_generation == generation) return x.leaf_->cached_record;
    if (x.leaf_ == nullptr && x.record_ == Scalar::kNoRecord) return take_number(x.value_);
    t.constant_count = constant_count;
    const uint32_t r = operand(x);
    constants = t.constants;
    constant_count = t.constant_count;
    return r;
  };
  for (std::size_t i = 0; i < n; ++i) {
    list[2 * i] = take(pa[i]);
    if constexpr (std::is_same_v<B, double>) list[2 * i + 1] = take_number(pb[i]);
    else list[2 * i + 1] = take(pb[i]);
  }
  if (c) list[count - 1] = take(*c);
  t.constant_count = constant_count;
  const uint32_t start = t.list_count;
  t.list_count = start + count;
  if (thread_mode & (kAnomaly | kTrackLocations)) ScalarTape::current().note_location(ScalarOp::Dot, start, y, where);
  return push<false>(ScalarOp::Dot, start, count, y);
}

Scalar dot(std::span<const Scalar> a, std::span<const Scalar> b, Where where) {
  return detail::ScalarAccess::dot(a, b, nullptr, where);
}
Scalar dot(std::span<const Scalar> a, std::span<const Scalar> b, const Scalar& c, Where where) {
  return detail::ScalarAccess::dot(a, b, &c, where);
}
Scalar dot(std::span<const Scalar> a, std::span<const double> b, Where where) {
  return detail::ScalarAccess::dot(a, b, nullptr, where);
}
Scalar dot(std::span<const Scalar> a, std::span<const double> b, const Scalar& c, Where where) {
  return detail::ScalarAccess::dot(a, b, &c, where);
}

Scalar custom_op(std::string_view name, const std::vector<Scalar>& inputs, ScalarForward forward,
                 ScalarBackward backward, Where where) {
  if (!forward || !backward)
    throw std::invalid_argument(fmt::format("custom_op '{}': forward and backward must both be set", name));
  if (name.empty()) throw std::invalid_argument("custom_op: the name is empty (traces, pictures and gradcheck show it)");
  std::vector<double> values;
  bool any = false;
  for (const Scalar& x : inputs) {
    values.push_back(x.value());
    any = any || x.requires_grad();
  }
  const double y = forward(values);
  using detail::ScalarAccess;
  if (!GradMode::enabled() || !any) {
    if (AnomalyMode::enabled()) ScalarAccess::check_constant(y, name, where);
    return Scalar(y);
  }
  ScalarAccess::begin_op();
  detail::CustomOpEntry entry{std::string(name), std::move(forward), std::move(backward), {}};
  for (const Scalar& x : inputs) entry.operands.push_back(ScalarAccess::operand(x));
  ScalarTape& tape = ScalarTape::current();
  const uint32_t index = tape.add_custom(std::move(entry));
  if (detail::thread_mode & (detail::kAnomaly | detail::kTrackLocations))
    tape.note_location(ScalarOp::Custom, index, y, where);
  return ScalarAccess::push<false>(ScalarOp::Custom, index, index, y);
}

std::vector<ScalarNodeView> graph_view(const Scalar& root) { return ScalarTape::current().view(root); }

TrackLocationsGuard::TrackLocationsGuard() {
  detail::set_thread_mode(detail::kTrackLocations, ++detail::track_locations > 0);
}
TrackLocationsGuard::~TrackLocationsGuard() {
  detail::set_thread_mode(detail::kTrackLocations, --detail::track_locations > 0);
}
bool TrackLocationsGuard::enabled() { return detail::track_locations > 0 || AnomalyMode::enabled(); }

std::vector<Scalar> grad(const std::vector<Scalar>& outputs, const std::vector<Scalar>& inputs,
                         const std::vector<Scalar>& grad_outputs, GradOptions options) {
  return ScalarTape::current().functional_grad(outputs, inputs, grad_outputs, options);
}

}  // namespace chainrule
