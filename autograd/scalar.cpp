// Scalar handles and the Scalar ops: each op computes its value with the forward of autograd/ops.h
// and records one tape entry; its derivative is the rule next to that forward.
#include "autograd/scalar.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

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

void Scalar::acquire() noexcept {
  if (leaf_) {
    ++leaf_->refs;
  } else if (record_ != kNoRecord) {
    ScalarTape& tape = ScalarTape::current();
    if (generation_ == tape.generation()) tape.acquire(record_);
  }
}

void Scalar::release() noexcept {
  if (leaf_) {
    ScalarTape::current().release_cell(leaf_);
  } else if (record_ != kNoRecord) {
    ScalarTape& tape = ScalarTape::current();
    if (generation_ == tape.generation()) tape.release(record_);
  }
}

Scalar& Scalar::operator=(const Scalar& o) {
  if (this != &o) {
    Scalar copy(o);
    *this = std::move(copy);
  }
  return *this;
}
Scalar& Scalar::operator=(Scalar&& o) noexcept {
  if (this != &o) {
    release();
    value_ = o.value_;
    leaf_ = o.leaf_;
    record_ = o.record_;
    generation_ = o.generation_;
    o.leaf_ = nullptr;
    o.record_ = kNoRecord;
  }
  return *this;
}

double Scalar::value() const { return leaf_ ? leaf_->value : value_; }

bool Scalar::requires_grad() const {
  if (leaf_) return leaf_->requires_grad;
  return record_ != kNoRecord;
}

double Scalar::grad() const {
  if (leaf_) return leaf_->grad;
  if (record_ == kNoRecord) return 0.0;
  const ScalarTape& tape = ScalarTape::current();
  if (generation_ != tape.generation())
    throw std::logic_error(
        "Scalar::grad: this interior node's graph was released (backward() freed it and a new graph "
        "has been recorded since). Read interior gradients right after backward(), or keep the graph "
        "alive with BackwardOptions{.retain_graph = true}.");
  return tape.record(record_).grad;
}

Scalar Scalar::grad_scalar() const {
  if (!leaf_) throw std::logic_error("Scalar::grad_scalar: only leaves keep a recorded gradient");
  return leaf_->grad_graph ? *leaf_->grad_graph : Scalar(leaf_->grad);
}

namespace {
LeafCell* leaf_or_throw(LeafCell* cell, const char* what) {
  if (!cell)
    throw std::logic_error(fmt::format(
        "Scalar::{}: only leaves (Scalar::leaf) can be changed in place; this Scalar is a constant or "
        "an interior node",
        what));
  return cell;
}
}  // namespace

void Scalar::set_requires_grad(bool on) {
  LeafCell* c = leaf_or_throw(leaf_, "set_requires_grad");
  c->requires_grad = on;
  c->cached_generation = 0;
}

void Scalar::set_value(double value) {
  LeafCell* c = leaf_or_throw(leaf_, "set_value");
  c->value = value;
  c->cached_generation = 0;  // graphs already recorded keep the old value; new ones see this one
}

void Scalar::zero_grad() {
  LeafCell* c = leaf_or_throw(leaf_, "zero_grad");
  c->grad = 0.0;
  delete c->grad_graph;
  c->grad_graph = nullptr;
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
  ScalarTape& tape = ScalarTape::current();
  if (generation_ != tape.generation())
    throw std::logic_error(
        "Scalar::backward: trying to backward through the graph a second time: this graph was freed "
        "by an earlier backward(). Pass BackwardOptions{.retain_graph = true} to the first backward() "
        "if you need to sweep the same graph twice.");
  tape.backward({{record_, seed}}, options);
}

Scalar& Scalar::operator+=(Located<Scalar> o) { return *this = *this + o; }
Scalar& Scalar::operator-=(Located<Scalar> o) { return *this = *this - o; }
Scalar& Scalar::operator*=(Located<Scalar> o) { return *this = *this * o; }
Scalar& Scalar::operator/=(Located<Scalar> o) { return *this = *this / o; }

Scalar& Scalar::set_label(std::string label) {
  if (leaf_) {
    leaf_->label = std::move(label);
  } else if (record_ != kNoRecord && generation_ == ScalarTape::current().generation()) {
    ScalarTape::current().set_label(record_, std::move(label));
  } else {
    throw std::logic_error("Scalar::set_label: constants and released nodes cannot be labelled");
  }
  return *this;
}

std::string Scalar::label() const {
  if (leaf_) return leaf_->label;
  if (record_ != kNoRecord && generation_ == ScalarTape::current().generation())
    return ScalarTape::current().label_of(record_);
  return {};
}

namespace {

void check_forward(double value, std::string_view op, const Where& where) {
  if (AnomalyMode::enabled() && !std::isfinite(value)) detail::throw_anomaly("forward", op, where, value);
}

template <class Op>
Scalar unary(ScalarOp code, const Scalar& x, const Where& where) {
  const double y = Op::f(x.value());
  if (!GradMode::enabled() || !x.requires_grad()) {
    check_forward(y, Op::name, where);
    return Scalar(y);
  }
  ScalarTape& tape = ScalarTape::current();
  tape.begin_op();
  const uint32_t a = tape.operand(x);
  return tape.push(code, a, a, y, where);
}

template <class Op>
Scalar binary(ScalarOp code, const Scalar& x, const Scalar& y, const Where& where) {
  const double z = Op::f(x.value(), y.value());
  if (!GradMode::enabled() || !(x.requires_grad() || y.requires_grad())) {
    check_forward(z, Op::name, where);
    return Scalar(z);
  }
  ScalarTape& tape = ScalarTape::current();
  tape.begin_op();
  const uint32_t a = tape.operand(x);
  const uint32_t b = tape.operand(y);
  return tape.push(code, a, b, z, where);
}

}  // namespace

Scalar operator+(const Scalar& a, Located<Scalar> b) { return binary<ops::Add>(ScalarOp::Add, a, b.value(), b.where); }
Scalar operator-(const Scalar& a, Located<Scalar> b) { return binary<ops::Sub>(ScalarOp::Sub, a, b.value(), b.where); }
Scalar operator*(const Scalar& a, Located<Scalar> b) { return binary<ops::Mul>(ScalarOp::Mul, a, b.value(), b.where); }
Scalar operator/(const Scalar& a, Located<Scalar> b) { return binary<ops::Div>(ScalarOp::Div, a, b.value(), b.where); }
Scalar pow(const Scalar& a, const Scalar& b, Where w) { return binary<ops::Pow>(ScalarOp::Pow, a, b, w); }
Scalar operator-(Located<Scalar> x) { return unary<ops::Neg>(ScalarOp::Neg, x.value(), x.where); }
Scalar exp(const Scalar& x, Where w) { return unary<ops::Exp>(ScalarOp::Exp, x, w); }
Scalar log(const Scalar& x, Where w) { return unary<ops::Log>(ScalarOp::Log, x, w); }
Scalar sqrt(const Scalar& x, Where w) { return unary<ops::Sqrt>(ScalarOp::Sqrt, x, w); }
Scalar sigmoid(const Scalar& x, Where w) { return unary<ops::Sigmoid>(ScalarOp::Sigmoid, x, w); }
Scalar tanh(const Scalar& x, Where w) { return unary<ops::Tanh>(ScalarOp::Tanh, x, w); }
Scalar relu(const Scalar& x, Where w) { return unary<ops::Relu>(ScalarOp::Relu, x, w); }
Scalar abs(const Scalar& x, Where w) { return unary<ops::Abs>(ScalarOp::Abs, x, w); }

Scalar custom_op(std::string_view name, const std::vector<Scalar>& inputs, ScalarForward forward,
                 ScalarBackward backward, Where where) {
  if (!forward || !backward)
    throw std::invalid_argument(fmt::format("custom_op '{}': forward and backward must both be set", name));
  std::vector<double> values;
  bool any = false;
  for (const Scalar& x : inputs) {
    values.push_back(x.value());
    any = any || x.requires_grad();
  }
  const double y = forward(values);
  if (!GradMode::enabled() || !any) {
    check_forward(y, name, where);
    return Scalar(y);
  }
  ScalarTape& tape = ScalarTape::current();
  tape.begin_op();
  detail::CustomOpEntry entry{std::string(name), std::move(forward), std::move(backward), {}};
  for (const Scalar& x : inputs) entry.operands.push_back(tape.operand(x));
  const uint32_t index = tape.add_custom(std::move(entry));
  return tape.push(ScalarOp::Custom, index, index, y, where);
}

std::vector<ScalarNodeView> graph_view(const Scalar& root) { return ScalarTape::current().view(root); }

TrackLocationsGuard::TrackLocationsGuard() { ++ScalarTape::track_locations; }
TrackLocationsGuard::~TrackLocationsGuard() { --ScalarTape::track_locations; }
bool TrackLocationsGuard::enabled() { return ScalarTape::track_locations > 0 || AnomalyMode::enabled(); }

std::vector<Scalar> grad(const std::vector<Scalar>& outputs, const std::vector<Scalar>& inputs,
                         const std::vector<Scalar>& grad_outputs, GradOptions options) {
  return ScalarTape::current().functional_grad(outputs, inputs, grad_outputs, options);
}

}  // namespace chainrule
