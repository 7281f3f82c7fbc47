// The Scalar tape's read side: op names, the graph views behind traces and pictures, and the
// functional grad(outputs, inputs) built on the sweeps of autograd/scalar_sweep.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "autograd/scalar_rules.h"
#include "autograd/scalar_tape.h"

namespace chainrule::detail {


std::string_view scalar_op_name(ScalarOp op) {
  switch (op) {
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
    case ScalarOp::Erf: return ops::Erf::name;
    case ScalarOp::Expm1: return ops::Expm1::name;
    case ScalarOp::Log1p: return ops::Log1p::name;
    case ScalarOp::Add: return ops::Add::name;
    case ScalarOp::Sub: return ops::Sub::name;
    case ScalarOp::Mul: return ops::Mul::name;
    case ScalarOp::Div: return ops::Div::name;
    case ScalarOp::Pow: return ops::Pow::name;
    case ScalarOp::Dot: return ops::Dot::name;
    case ScalarOp::Custom: return "custom";
  }
  return "?";
}

std::string_view ScalarTape::op_name(uint32_t record) const {
  const ScalarRecord& n = this->record(record);
  return n.op == ScalarOp::Custom ? std::string_view(customs_[n.a].name) : scalar_op_name(n.op);
}

std::string ScalarTape::label_of(uint32_t record) const {
  if (!is_constant(record) && this->record(record).op == ScalarOp::Leaf)
    return state_.leaves[this->record(record).a]->label;
  auto it = labels_.find(record);
  return it == labels_.end() ? std::string() : it->second;
}

std::vector<uint32_t> ScalarTape::operands(uint32_t record) const {
  const ScalarRecord& n = this->record(record);
  switch (n.op) {
    case ScalarOp::Leaf:
    case ScalarOp::Freed:
      return {};
    case ScalarOp::Custom:
      return customs_[n.a].operands;
    case ScalarOp::Dot:
      return std::vector<uint32_t>(state_.lists + n.a, state_.lists + n.a + n.b);
    default:
      return is_binary(n.op) ? std::vector<uint32_t>{n.a, n.b} : std::vector<uint32_t>{n.a};
  }
}

std::vector<double> ScalarTape::local_derivatives(uint32_t record) const {
  const ScalarRecord& n = this->record(record);
  const std::vector<uint32_t> ops = operands(record);
  std::vector<double> out(ops.size(), 0.0);
  if (n.op == ScalarOp::Custom) {
    // The user's backward, asked for grad * d result / d input with grad = 1/2 (a power of two, so
    // that a correct backward's result divides back exactly): one that forgets to multiply by the
    // upstream gradient then shows derivatives twice too large, and gradcheck's re-check names it
    // (asked with grad = 1, it would agree with its forward and hide the bug).
    constexpr double kGrad = 0.5;
    std::vector<double> values;
    for (uint32_t j : ops) values.push_back(operand_value(state_, j));
    out = customs_[n.a].backward(kGrad, values, n.value);
    out.resize(ops.size(), 0.0);
    for (double& d : out) d /= kGrad;
    return out;
  }
  if (n.op == ScalarOp::Dot) {
    apply_dot(
        n.b, 1.0, [&](uint32_t k) { return operand_value(state_, ops[k]); }, [](uint32_t) { return true; },
        [&](uint32_t k, double d) { out[k] = d; });
    return out;
  }
  if (ops.empty()) return out;
  apply_rule(n.op, 1.0, operand_value(state_, n.a), operand_value(state_, n.b), n.value, true, ops.size() > 1,
             [&](int k, double d) { out[k] = d; });
  return out;
}

std::vector<Scalar> ScalarTape::gradients(std::span<const Seed> seeds, const std::vector<Wrt>& wrt,
                                          GradOptions options) {
  if (state_.sweeping != 0) throw_nested("grad");
  const bool free_graph = !options.retain_graph && !options.create_graph;
  std::vector<Scalar> out(wrt.size());
  {
    SweepGuard guard(state_.sweeping);
    const KeepInteriorGrads untouched(*this);  // grad() changes no .grad, interior ones included
    const uint32_t top = begin_sweep(seeds);
    RecordedAdjoints adjoint;
    const uint32_t low = sweep(top, options.create_graph, seeds, adjoint);
    auto adjoint_of = [&](uint32_t j) -> Scalar {
      return options.create_graph ? adjoint[j] : Scalar(record(j).grad);
    };
    // With create_graph, a leaf behind several Leaf records sums their recorded adjoints below:
    // recorded whatever the caller's mode (under NoGradGuard the sum was a constant).
    const GradModeGuard recording(true);
    // A leaf may sit behind several Leaf records (its value changed between uses): sum them.
    std::unordered_map<const LeafCell*, std::vector<size_t>> leaf_inputs;
    for (size_t k = 0; k < wrt.size(); ++k)
      if (wrt[k].leaf) leaf_inputs[wrt[k].leaf].push_back(k);
    std::vector<bool> used(wrt.size(), false);
    if (!leaf_inputs.empty()) {
      for (uint32_t i = low; i <= top; ++i) {
        const ScalarRecord& n = record(i);
        if (!reached(n) || n.op != ScalarOp::Leaf) continue;
        auto it = leaf_inputs.find(state_.leaves[n.a]);
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
      if (j <= top && j >= low && reached(record(j))) {
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
    finish_sweep(low, top, free_graph);
  }
  if (free_graph) state_.cold_at = 0;  // (see ScalarTape::backward)
  return out;
}

namespace {
// grad()'s output or input `i` is an interior handle of no graph on this tape.
[[noreturn]] void throw_released(const char* what, size_t i) {
  throw std::logic_error(fmt::format(
      "grad: {} {} belongs to a graph that is gone: trying to sweep a graph a second time after an "
      "earlier backward() or grad() freed it (its tape has been reused since), or a graph recorded "
      "on another thread (a graph belongs to the thread that recorded it). Keep a graph for a "
      "second sweep with retain_graph = true.",
      what, i));
}
}  // namespace

std::vector<Scalar> ScalarTape::functional_grad(const std::vector<Scalar>& outputs,
                                                const std::vector<Scalar>& inputs,
                                                const std::vector<Scalar>& grad_outputs, GradOptions options) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(fmt::format("grad: got {} outputs but {} grad_outputs", outputs.size(),
                                            grad_outputs.size()));
  if (outputs.empty()) throw std::invalid_argument("grad: no outputs given");
  // As PyTorch: a sweep for no input would only free the graph.
  if (inputs.empty()) throw std::invalid_argument("grad: no inputs given");
  for (size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].requires_grad())
      throw std::invalid_argument(fmt::format(
          "grad: output {} does not require grad (a constant, or computed under NoGradGuard)", i));
  // A leaf output enters the tape through a Leaf record. The one begin_op may reset the array (when
  // no graph on it is alive), so it runs before any interior output's record is taken (that output
  // is then stale, and refused below); enter_leaf makes room for each Leaf record without another.
  if (std::any_of(outputs.begin(), outputs.end(), [](const Scalar& y) { return y.leaf_ != nullptr; }))
    ScalarAccess::begin_op();
  std::vector<Seed> seeds;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Scalar& y = outputs[i];
    Seed seed{0, grad_outputs.empty() ? 1.0 : grad_outputs[i].value()};
    if (!grad_outputs.empty()) seed.scalar = &grad_outputs[i];
    if (y.leaf_) {
      seed.record = ScalarAccess::operand(y);
    } else if (!y.attached()) {
      throw_released("output", i);
    } else {
      seed.record = y.record_;
    }
    seeds.push_back(seed);
  }
  std::vector<Wrt> wrt;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Scalar& x = inputs[k];
    if (!x.requires_grad())
      throw std::invalid_argument(fmt::format(
          "grad: input {} does not require grad (a constant, or a leaf with requires_grad = false)", k));
    if (!x.leaf_ && !x.attached()) throw_released("input", k);
    wrt.push_back({x.leaf_ ? Scalar::kNoRecord : x.record_, x.leaf_});
  }
  return gradients(seeds, wrt, options);
}

bool ScalarTape::backward_started_at(const Scalar& root) const {
  if (root.leaf_ || root.record_ == Scalar::kNoRecord || !root.attached()) return false;
  const uint16_t sweep = record(root.record_).sweep;
  for (const BackwardSeeds& b : backward_seeds_)
    if (b.generation == state_.generation && b.sweep == sweep && sweep != 0)
      return std::find(b.records.begin(), b.records.end(), root.record_) != b.records.end();
  return false;
}

std::vector<ScalarNodeView> ScalarTape::view(const Scalar& root) {
  std::vector<ScalarNodeView> out;
  if (root.leaf_ || root.record_ == Scalar::kNoRecord) {
    ScalarNodeView v{0, root.leaf_ ? "leaf" : "constant", root.label(), root.value(), root.grad(), {}, {}, Where(),
                     root.leaf_ != nullptr, root.leaf_ == nullptr, {}};
    v.adjoint = v.grad;
    v.sweep = v.grad != 0 ? 1 : 0;
    out.push_back(std::move(v));
    return out;
  }
  if (!root.attached())
    throw std::logic_error("graph_view: the graph of this Scalar was released (see Scalar::grad)");
  // A custom op's backward (local_derivatives runs it) may record ops; with the graph freed by a
  // backward, the first of them would reset the tape (and destroy that backward) mid-view.
  const SweepGuard no_reset(state_.sweeping);
  // The records of root's graph, found top down (a record's operands are below it) until none
  // found is left unvisited: the cost is the graph's, not the tape's below it.
  const uint32_t top = root.record_;
  std::unordered_map<uint32_t, int64_t> id;
  std::unordered_set<uint32_t> in = {top};
  std::vector<uint32_t> members;  // top down
  std::size_t pending = 1;
  for (int64_t i = top; i >= 0 && pending > 0; --i) {
    if (!in.contains(static_cast<uint32_t>(i))) continue;
    --pending;
    members.push_back(static_cast<uint32_t>(i));
    for (uint32_t j : operands(static_cast<uint32_t>(i)))
      if (!is_constant(j) && in.insert(j).second) ++pending;
  }
  // Constant operands are not records: each becomes a node just before its first consumer, which
  // keeps the view in creation order (a constant is recorded while its consumer is).
  std::unordered_map<uint32_t, size_t> constant_id;
  auto id_of = [&](uint32_t j) -> size_t {
    if (!is_constant(j)) return static_cast<size_t>(id.at(j));
    auto [it, added] = constant_id.try_emplace(j, out.size());
    if (added) {
      ScalarNodeView c;
      c.id = out.size();
      c.op = "constant";
      c.label = label_of(j);
      c.value = operand_value(state_, j);
      c.grad = 0.0;
      c.is_constant = true;
      out.push_back(std::move(c));
    }
    return it->second;
  };
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    const uint32_t i = *it;
    std::vector<size_t> inputs;
    for (uint32_t j : operands(i)) inputs.push_back(id_of(j));
    id[i] = static_cast<int64_t>(out.size());
    const ScalarRecord n = record(i);  // a copy: a custom op's backward (local_derivatives) may record
    ScalarNodeView v;
    v.id = out.size();
    v.op = std::string(op_name(i));
    v.label = label_of(i);
    v.value = n.value;
    v.grad = n.op == ScalarOp::Leaf ? state_.leaves[n.a]->grad : n.grad;
    v.adjoint = n.sweep != 0 ? n.grad : 0.0;
    v.sweep = n.sweep;
    v.inputs = std::move(inputs);
    v.local = local_derivatives(i);
    v.where = where_of(i);
    v.is_leaf = n.op == ScalarOp::Leaf;
    // A leaf whose requires_grad was turned off since takes no gradient (see set_requires_grad):
    // shown as an input, not as a parameter with the gradient the sweep did not give it.
    v.is_constant = v.is_leaf && !state_.leaves[n.a]->requires_grad;
    if (n.op == ScalarOp::Custom) v.forward = customs_[n.a].forward;
    out.push_back(std::move(v));
  }
  return out;
}

bool compact_scalar_tape() { return ScalarTape::current().compact_now(); }

ScalarTapeStats scalar_tape_stats() {
  const ScalarTape& t = ScalarTape::current();
  std::size_t live = 0;
  for (uint32_t i = 0; i < t.size(); ++i) live += named_unfreed(t.record(i));
  return {t.size(),           t.capacity(),       sizeof(ScalarRecord), tape_state.constant_count, live,
          t.foreign_counts(), t.compactions(), t.moved_handles()};
}

}  // namespace chainrule::detail
