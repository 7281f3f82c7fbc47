// The Scalar tape: recording, handle bookkeeping and the two reverse sweeps.
#include "autograd/scalar_tape.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "autograd/anomaly.h"
#include "autograd/ops.h"

namespace chainrule::detail {

std::string_view scalar_op_name(ScalarOp op) {
  switch (op) {
    case ScalarOp::Const: return "constant";
    case ScalarOp::Leaf: return "leaf";
    case ScalarOp::Freed: return "freed";
    case ScalarOp::Neg: return ops::Neg::name;
    case ScalarOp::Exp: return ops::Exp::name;
    case ScalarOp::Log: return ops::Log::name;
    case ScalarOp::Sqrt: return ops::Sqrt::name;
    case ScalarOp::Sigmoid: return ops::Sigmoid::name;
    case ScalarOp::Tanh: return ops::Tanh::name;
    case ScalarOp::Relu: return ops::Relu::name;
    case ScalarOp::Abs: return ops::Abs::name;
    case ScalarOp::Add: return ops::Add::name;
    case ScalarOp::Sub: return ops::Sub::name;
    case ScalarOp::Mul: return ops::Mul::name;
    case ScalarOp::Div: return ops::Div::name;
    case ScalarOp::Pow: return ops::Pow::name;
    case ScalarOp::Custom: return "custom";
  }
  return "?";
}

namespace {

// The one dispatch from a record's op to its rules in autograd/ops.h, for both sweeps: G is the
// gradient type (double or Scalar), V the value type. emit(k, d) receives d(out)/d(operand k) * grad.
template <class G, class V, class Emit>
void apply_rule(ScalarOp op, const G& grad, const V& a, const V& b, const V& result, bool need_a,
                bool need_b, Emit&& emit) {
  switch (op) {
#define CHAINRULE_UNARY(CODE, RULE) \
  case ScalarOp::CODE: if (need_a) emit(0, ops::RULE::dx(grad, a, result)); break;
#define CHAINRULE_BINARY(CODE, RULE)                          \
  case ScalarOp::CODE:                                        \
    if (need_a) emit(0, ops::RULE::da(grad, a, b, result));   \
    if (need_b) emit(1, ops::RULE::db(grad, a, b, result));   \
    break;
    CHAINRULE_UNARY(Neg, Neg)
    CHAINRULE_UNARY(Exp, Exp)
    CHAINRULE_UNARY(Log, Log)
    CHAINRULE_UNARY(Sqrt, Sqrt)
    CHAINRULE_UNARY(Sigmoid, Sigmoid)
    CHAINRULE_UNARY(Tanh, Tanh)
    CHAINRULE_UNARY(Relu, Relu)
    CHAINRULE_UNARY(Abs, Abs)
    CHAINRULE_BINARY(Add, Add)
    CHAINRULE_BINARY(Sub, Sub)
    CHAINRULE_BINARY(Mul, Mul)
    CHAINRULE_BINARY(Div, Div)
    CHAINRULE_BINARY(Pow, Pow)
#undef CHAINRULE_UNARY
#undef CHAINRULE_BINARY
    case ScalarOp::Const:
    case ScalarOp::Leaf:
    case ScalarOp::Freed:
    case ScalarOp::Custom:  // handled by the sweeps (its rule is the user's)
      break;
  }
}

bool is_binary(ScalarOp op) { return op >= ScalarOp::Add && op <= ScalarOp::Pow; }

[[noreturn]] void throw_freed(std::string_view op) {
  throw std::logic_error(fmt::format(
      "backward: trying to backward through the graph a second time: the '{}' node was freed by an "
      "earlier backward(). Pass BackwardOptions{{.retain_graph = true}} to the first backward() if "
      "you need to sweep the same graph twice.",
      op));
}

}  // namespace

ScalarTape::~ScalarTape() { reset(); }

// The generation moves on before any cell is released: a cell may own a recorded gradient
// (backward with create_graph) whose handle would otherwise reach back into the tape being reset.
void ScalarTape::reset() {
  std::vector<LeafCell*> cells;
  cells.swap(leaves_);
  records_.clear();
  customs_.clear();
  where_.clear();
  labels_.clear();
  live_ = 0;
  live_unfreed_ = 0;
  if (++generation_ == 0) generation_ = 1;  // 0 means "no record" in leaf caches
  for (LeafCell* c : cells) release_cell(c);
}


void ScalarTape::release_cell(LeafCell* cell) {
  if (--cell->refs == 0) {
    delete cell->grad_graph;
    delete cell;
  }
}

uint32_t ScalarTape::leaf_operand(LeafCell* c) {
  if (!c->requires_grad) {
    // Enters as a constant, but keeps its label: an input such as "X1" stays named in traces.
    const uint32_t r = append(ScalarOp::Const, 0, c->value);
    if (!c->label.empty()) labels_[r] = c->label;
    return r;
  }
  leaves_.push_back(c);
  ++c->refs;
  const uint32_t r = append(ScalarOp::Leaf, static_cast<uint32_t>(leaves_.size() - 1), c->value);
  c->cached_generation = generation_;
  c->cached_record = r;
  return r;
}

void ScalarTape::throw_too_many() const {
  throw std::length_error(fmt::format("Scalar: the graph has more than {} nodes", records_.size()));
}

void ScalarTape::note_location(ScalarOp op, uint32_t a, double value, const Where& where) {
  if (AnomalyMode::enabled() && !std::isfinite(value)) {
    const std::string name(op == ScalarOp::Custom ? std::string_view(customs_[a].name) : scalar_op_name(op));
    throw_anomaly("forward", name, where, value);
  }
  where_.resize(records_.size());
  where_.push_back(where);
}

Scalar ScalarTape::handle_to(uint32_t record) {
  const ScalarRecord& r = records_[record];
  if (r.op == ScalarOp::Const) return Scalar(r.value);
  Scalar s(r.value);
  s.record_ = record;
  s.generation_ = generation_;
  acquire(record);
  return s;
}

uint32_t ScalarTape::prepare_sweep(const std::vector<Seed>& seeds) {
  uint32_t top = 0;
  for (const Seed& s : seeds) top = std::max(top, s.record);
  ScalarRecord* r = records_.data();
  for (uint32_t i = 0; i <= top; ++i) {
    r[i].grad = 0.0;
    r[i].reached = 0;
  }
  for (const Seed& s : seeds) {
    if (r[s.record].freed && r[s.record].op != ScalarOp::Leaf) throw_freed(scalar_op_name(r[s.record].op));
    r[s.record].grad += s.value;
    r[s.record].reached = 1;
  }
  return top;
}

// The fast sweep: one reverse loop over plain doubles. Only adjoints change, so a throw part-way
// (a freed node, an anomaly) leaves every leaf's gradient as it was. `check` is anomaly mode.
template <bool check>
void ScalarTape::sweep_values(uint32_t top) {
  ScalarRecord* r = records_.data();
  std::vector<double> values;
  for (int64_t i = top; i >= 0; --i) {
    ScalarRecord& n = r[i];
    if (!n.reached || n.op == ScalarOp::Leaf || n.op == ScalarOp::Const) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    auto contribute = [&](ScalarRecord& target, double d) {
      if constexpr (check) {
        if (!std::isfinite(d)) throw_anomaly("backward", op_name(static_cast<uint32_t>(i)), where_of(static_cast<uint32_t>(i)), d);
      }
      target.grad += d;
      target.reached = 1;
    };
    if (n.op == ScalarOp::Custom) {
      const CustomOpEntry& c = customs_[n.a];
      values.clear();
      for (uint32_t j : c.operands) values.push_back(r[j].value);
      const std::vector<double> d = c.backward(n.grad, values, n.value);
      if (d.size() != c.operands.size())
        throw std::logic_error(fmt::format("custom op '{}': backward returned {} gradients for {} inputs",
                                           c.name, d.size(), c.operands.size()));
      for (size_t k = 0; k < d.size(); ++k)
        if (r[c.operands[k]].op != ScalarOp::Const) contribute(r[c.operands[k]], d[k]);
      continue;
    }
    ScalarRecord& A = r[n.a];
    ScalarRecord& B = r[n.b];
    const bool need_a = A.op != ScalarOp::Const;
    const bool need_b = is_binary(n.op) && B.op != ScalarOp::Const;
    apply_rule(n.op, n.grad, A.value, B.value, n.value, need_a, need_b,
               [&](int k, double d) { contribute(k == 0 ? A : B, d); });
  }
}

void ScalarTape::run_sweep_values(uint32_t top) {
  if (AnomalyMode::enabled()) sweep_values<true>(top);
  else sweep_values<false>(top);
}

std::string_view ScalarTape::op_name(uint32_t record) const {
  const ScalarRecord& n = records_[record];
  return n.op == ScalarOp::Custom ? std::string_view(customs_[n.a].name) : scalar_op_name(n.op);
}

std::string ScalarTape::label_of(uint32_t record) const {
  const ScalarRecord& n = records_[record];
  if (n.op == ScalarOp::Leaf) return leaves_[n.a]->label;
  auto it = labels_.find(record);
  return it == labels_.end() ? std::string() : it->second;
}

uint32_t ScalarTape::add_custom(CustomOpEntry entry) {
  customs_.push_back(std::move(entry));
  return static_cast<uint32_t>(customs_.size() - 1);
}

std::vector<uint32_t> ScalarTape::operands(uint32_t record) const {
  const ScalarRecord& n = records_[record];
  switch (n.op) {
    case ScalarOp::Const:
    case ScalarOp::Leaf:
    case ScalarOp::Freed:
      return {};
    case ScalarOp::Custom:
      return customs_[n.a].operands;
    default:
      return is_binary(n.op) ? std::vector<uint32_t>{n.a, n.b} : std::vector<uint32_t>{n.a};
  }
}

std::vector<double> ScalarTape::local_derivatives(uint32_t record) const {
  const ScalarRecord& n = records_[record];
  const std::vector<uint32_t> ops = operands(record);
  std::vector<double> out(ops.size(), 0.0);
  if (n.op == ScalarOp::Custom) {
    std::vector<double> values;
    for (uint32_t j : ops) values.push_back(records_[j].value);
    out = customs_[n.a].backward(1.0, values, n.value);
    out.resize(ops.size(), 0.0);
    return out;
  }
  if (ops.empty()) return out;
  apply_rule(n.op, 1.0, records_[n.a].value, records_[n.b].value, n.value, true, ops.size() > 1,
             [&](int k, double d) { out[k] = d; });
  return out;
}

// The recorded sweep (create_graph): the same rules on Scalars, so the backward is itself a graph.
std::vector<Scalar> ScalarTape::sweep_recorded(uint32_t top, const std::vector<Seed>& seeds) {
  std::vector<Scalar> adjoint(top + 1);
  for (const Seed& s : seeds) adjoint[s.record] += Scalar(s.value);
  auto value_of = [this](uint32_t j) { return handle_to(j); };
  for (int64_t i = top; i >= 0; --i) {
    const ScalarRecord n = records_[i];  // a copy: recording below may grow the array
    if (!n.reached || n.op == ScalarOp::Leaf || n.op == ScalarOp::Const) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    if (n.op == ScalarOp::Custom)
      throw std::logic_error(fmt::format(
          "create_graph: the custom op '{}' has a first-order backward (on doubles) and cannot be "
          "differentiated twice",
          customs_[n.a].name));
    const bool need_a = records_[n.a].op != ScalarOp::Const;
    const bool need_b = is_binary(n.op) && records_[n.b].op != ScalarOp::Const;
    const Scalar a = value_of(n.a), b = value_of(n.b), result = value_of(static_cast<uint32_t>(i));
    const Scalar g = adjoint[i];
    run_backward_rule(op_name(static_cast<uint32_t>(i)), where_of(static_cast<uint32_t>(i)), [&] {
      apply_rule(n.op, g, a, b, result, need_a, need_b, [&](int k, const Scalar& d) {
        if (AnomalyMode::enabled() && !std::isfinite(d.value()))
          throw_anomaly("backward", op_name(static_cast<uint32_t>(i)), where_of(static_cast<uint32_t>(i)), d.value());
        const uint32_t j = k == 0 ? n.a : n.b;
        adjoint[j] = adjoint[j] + d;
        records_[j].grad += d.value();
        records_[j].reached = 1;
      });
    });
  }
  return adjoint;
}

void ScalarTape::finish_sweep(uint32_t top, bool free_graph) {
  if (!free_graph) return;
  for (uint32_t i = 0; i <= top; ++i) {
    ScalarRecord& n = records_[i];
    if (!n.reached || n.freed) continue;
    n.freed = 1;
    live_unfreed_ -= n.handles;
  }
}

namespace {
struct SweepGuard {
  uint32_t& counter;
  explicit SweepGuard(uint32_t& c) : counter(c) { ++counter; }
  ~SweepGuard() { --counter; }
};
}  // namespace

void ScalarTape::backward(const std::vector<Seed>& seeds, BackwardOptions options) {
  const bool free_graph = !options.retain_graph && !options.create_graph;
  {
    SweepGuard guard(sweeping_);
    const uint32_t top = prepare_sweep(seeds);
    if (!options.create_graph) {
      run_sweep_values(top);
      for (uint32_t i = 0; i <= top; ++i) {
        const ScalarRecord& n = records_[i];
        if (n.reached && n.op == ScalarOp::Leaf) leaves_[n.a]->grad += n.grad;
      }
    } else {
      GradModeGuard recording(true);
      std::vector<Scalar> adjoint = sweep_recorded(top, seeds);
      for (uint32_t i = 0; i <= top; ++i) {
        const ScalarRecord& n = records_[i];
        if (!n.reached || n.op != ScalarOp::Leaf) continue;
        LeafCell* c = leaves_[n.a];
        c->grad += n.grad;
        if (c->grad_graph == nullptr) c->grad_graph = new Scalar(0.0);
        *c->grad_graph = *c->grad_graph + adjoint[i];
      }
    }
    finish_sweep(top, free_graph);
  }
  if (live_ == 0) reset();
}

std::vector<Scalar> ScalarTape::gradients(const std::vector<Seed>& seeds, const std::vector<Wrt>& wrt,
                                          GradOptions options) {
  const bool free_graph = !options.retain_graph && !options.create_graph;
  std::vector<Scalar> out(wrt.size());
  {
    SweepGuard guard(sweeping_);
    const uint32_t top = prepare_sweep(seeds);
    std::vector<Scalar> adjoint;
    if (options.create_graph) {
      GradModeGuard recording(true);
      adjoint = sweep_recorded(top, seeds);
    } else {
      run_sweep_values(top);
    }
    auto adjoint_of = [&](uint32_t j) -> Scalar {
      return options.create_graph ? adjoint[j] : Scalar(records_[j].grad);
    };
    // A leaf may sit behind several Leaf records (its value changed between uses): sum them.
    std::unordered_map<const LeafCell*, std::vector<size_t>> leaf_inputs;
    for (size_t k = 0; k < wrt.size(); ++k)
      if (wrt[k].leaf) leaf_inputs[wrt[k].leaf].push_back(k);
    std::vector<bool> used(wrt.size(), false);
    if (!leaf_inputs.empty()) {
      for (uint32_t i = 0; i <= top; ++i) {
        const ScalarRecord& n = records_[i];
        if (!n.reached || n.op != ScalarOp::Leaf) continue;
        auto it = leaf_inputs.find(leaves_[n.a]);
        if (it == leaf_inputs.end()) continue;
        for (size_t k : it->second) {
          out[k] = used[k] ? out[k] + adjoint_of(i) : adjoint_of(i);
          used[k] = true;
        }
      }
    }
    for (size_t k = 0; k < wrt.size(); ++k) {
      if (wrt[k].leaf) continue;
      const uint32_t j = wrt[k].record;
      if (j <= top && records_[j].reached) {
        out[k] = adjoint_of(j);
        used[k] = true;
      }
    }
    for (size_t k = 0; k < wrt.size(); ++k) {
      if (used[k]) continue;
      if (!options.allow_unused)
        throw std::invalid_argument(fmt::format(
            "grad: input {} is not used to compute the outputs (pass allow_unused = true to get 0)", k));
      out[k] = Scalar(0.0);
    }
    finish_sweep(top, free_graph);
  }
  return out;
}

std::vector<Scalar> ScalarTape::functional_grad(const std::vector<Scalar>& outputs,
                                                const std::vector<Scalar>& inputs,
                                                const std::vector<Scalar>& grad_outputs, GradOptions options) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(fmt::format("grad: got {} outputs but {} grad_outputs", outputs.size(),
                                            grad_outputs.size()));
  if (outputs.empty()) throw std::invalid_argument("grad: no outputs given");
  std::vector<Seed> seeds;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Scalar& y = outputs[i];
    const double seed = grad_outputs.empty() ? 1.0 : grad_outputs[i].value();
    if (!y.requires_grad())
      throw std::invalid_argument(fmt::format(
          "grad: output {} does not require grad (a constant, or computed under NoGradGuard)", i));
    if (y.leaf_) {
      begin_op();
      seeds.push_back({operand(y), seed});
    } else if (y.generation_ != generation_) {
      throw_freed("output");
    } else {
      seeds.push_back({y.record_, seed});
    }
  }
  std::vector<Wrt> wrt;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Scalar& x = inputs[k];
    if (!x.requires_grad())
      throw std::invalid_argument(fmt::format(
          "grad: input {} does not require grad (a constant, or a leaf with requires_grad = false)", k));
    if (!x.leaf_ && x.generation_ != generation_) throw_freed("input");
    wrt.push_back({x.leaf_ ? Scalar::kNoRecord : x.record_, x.leaf_});
  }
  return gradients(seeds, wrt, options);
}

std::vector<ScalarNodeView> ScalarTape::view(const Scalar& root) {
  std::vector<ScalarNodeView> out;
  if (root.leaf_ || root.record_ == Scalar::kNoRecord) {
    ScalarNodeView v{0, root.leaf_ ? "leaf" : "constant", root.label(), root.value(), root.grad(), {}, {}, Where(),
                     root.leaf_ != nullptr, root.leaf_ == nullptr, {}};
    out.push_back(std::move(v));
    return out;
  }
  if (root.generation_ != generation_)
    throw std::logic_error("graph_view: the graph of this Scalar was released (see Scalar::grad)");
  const uint32_t top = root.record_;
  std::vector<int64_t> id(top + 1, -1);
  std::vector<char> in(top + 1, 0);
  in[top] = 1;
  for (int64_t i = top; i >= 0; --i)
    if (in[i])
      for (uint32_t j : operands(static_cast<uint32_t>(i))) in[j] = 1;
  for (uint32_t i = 0; i <= top; ++i) {
    if (!in[i]) continue;
    id[i] = static_cast<int64_t>(out.size());
    const ScalarRecord& n = records_[i];
    ScalarNodeView v;
    v.id = out.size();
    v.op = std::string(op_name(i));
    v.label = label_of(i);
    v.value = n.value;
    v.grad = n.op == ScalarOp::Leaf ? leaves_[n.a]->grad : n.grad;
    for (uint32_t j : operands(i)) v.inputs.push_back(static_cast<size_t>(id[j]));
    v.local = local_derivatives(i);
    v.where = where_of(i);
    v.is_leaf = n.op == ScalarOp::Leaf;
    v.is_constant = n.op == ScalarOp::Const;
    if (v.is_constant) v.op = "constant";
    if (n.op == ScalarOp::Custom) v.forward = customs_[n.a].forward;
    out.push_back(std::move(v));
  }
  return out;
}

ScalarTapeStats scalar_tape_stats() {
  const ScalarTape& t = ScalarTape::current();
  return {t.size(), t.capacity(), sizeof(ScalarRecord)};
}

}  // namespace chainrule::detail
