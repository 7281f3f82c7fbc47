// The Scalar tape's reverse sweeps: the one-pass sweep, the checked sweep and the recorded sweep
// (create_graph), and backward() choosing among them (see autograd/scalar_tape.h for which runs
// when). The tape's growth, reset and leaves are in autograd/scalar_tape.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/scalar_rules.h"
#include "autograd/scalar_tape.h"

namespace chainrule::detail {

// A sweep keeps its state in the records (adjoints, the id of the sweep that reached them), so a
// second sweep started from inside the first (a custom op's backward calling backward() or grad())
// would overwrite the first's and silently lose gradients.
void ScalarTape::throw_nested(std::string_view what) {
  throw std::logic_error(fmt::format(
      "{}: called while a backward is running on this thread's Scalar tape (from a custom op's "
      "backward?). A nested backward on Scalars is not supported: compute what the custom op's "
      "backward needs with plain numbers, or run it before or after the outer backward.",
      what));
}

// A new sweep id (records keep the id of the last sweep that reached them, so nothing is cleared per
// sweep), and the seeds reached.
uint32_t ScalarTape::begin_sweep(std::span<const Seed> seeds) {
  TapeState& t = state_;
  if (++t.sweep == 0) {  // the 16-bit id wrapped: forget every old id once
    for (uint32_t i = 0; i < t.size; ++i) t.records[i].sweep = 0;
    t.sweep = 1;
  }
  uint32_t top = 0;
  for (const Seed& s : seeds) {
    const ScalarRecord& r = t.records[s.record];
    if (r.freed && r.op != ScalarOp::Leaf) throw_freed(scalar_op_name(r.op));
    top = std::max(top, s.record);
  }
  pending_ = 0;
  for (const Seed& s : seeds) reach(t.records[s.record], s.value);
  swept_ = true;  // adjoints are no longer all 0
  return top;
}

// The one-pass sweep: adjoints, leaves' gradients and freeing in one reverse loop over doubles. Only
// taken when nothing in it can throw (TapeState::irregular == 0, anomaly mode off).
// `fresh`: no sweep has run since the last reset, so every record's adjoint is still the 0 it was
// recorded with. Then reaching a record is one add and a store of the id, and the loop runs down
// to record 0 instead of counting the reached records it has yet to process.
template <bool free_graph, bool fresh>
void ScalarTape::sweep_one_pass(uint32_t top) {
  ScalarRecord* const r = state_.records;
  const double* const constants = state_.constants;
  LeafCell* const* const leaves = state_.leaves;
  const uint32_t* const lists = state_.lists;
  const uint16_t id = state_.sweep;
  uint32_t pending = pending_;  // reached records below, not yet processed: 0 ends the sweep
  uint32_t skipped = 0;         // records below the top that the sweep did not reach
  auto value = [r, constants](uint32_t i) { return operand_value(r, constants, i); };
  // reach(), on locals: this loop keeps the sweep id and the pending count in registers.
  auto reach_one = [&](ScalarRecord& target, double d) {
    if constexpr (fresh) {
      target.sweep = id;
      target.grad += d;
    } else if (target.sweep != id) {
      target.sweep = id;
      target.grad = d;
      ++pending;
    } else {
      target.grad += d;
    }
  };
  ScalarRecord* n = r + top + 1;
  while (fresh ? n != r : pending > 0) {
    --n;
    if (n->sweep != id) {
      ++skipped;
      continue;
    }
    if constexpr (!fresh) --pending;
    if constexpr (free_graph) n->freed = true;
    const uint32_t a = n->a, b = n->b;
    apply_rule(
        n->op, n->grad, [&] { return value(a); }, [&] { return value(b); }, n->value, [a] { return !is_constant(a); },
        [b] { return !is_constant(b); }, [&](int k, double d) { reach_one(r[k == 0 ? a : b], d); },
        [&] {
          LeafCell* c = leaves[a];
          // A leaf whose requires_grad was turned off after this graph was recorded takes nothing
          // (as PyTorch's AccumulateGrad); a select, not a branch, in this loop.
          c->grad += c->requires_grad ? n->grad : 0.0;
          if constexpr (free_graph) c->cached_generation = 0;  // a new graph enters it anew
        },
        [&] {
          const uint32_t* list = lists + a;
          apply_dot(
              b, n->grad, [&](uint32_t k) { return value(list[k]); }, [list](uint32_t k) { return !is_constant(list[k]); },
              [&](uint32_t k, double d) { reach_one(r[list[k]], d); });
        });
  }
  pending_ = 0;
  if constexpr (free_graph) {
    // It freed every record on the tape (a training step's sweep): no handle names an unfreed one,
    // and the next op reuses the array without looking (see ScalarTape::prepare_op).
    if (skipped == 0 && n == r && top + 1 == state_.size) dead_below_ = state_.size;
    ++state_.irregular;
  }
}

// The checked sweep: only adjoints change, so a throw part-way (a freed node, an anomaly, a custom
// op's bad backward) leaves every leaf's gradient as it was. `check` is anomaly mode. Returns the
// lowest record it reached.
template <bool check>
uint32_t ScalarTape::sweep_checked(uint32_t top) {
  ScalarRecord* r = state_.records;
  std::vector<double> values;
  int64_t i = top;
  for (; i >= 0 && pending_ > 0; --i) {
    ScalarRecord& n = r[i];
    if (!reached(n)) continue;
    --pending_;
    if (n.op == ScalarOp::Leaf) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    auto contribute = [&](ScalarRecord& target, double d) {
      if constexpr (check) {
        if (!std::isfinite(d))
          throw_anomaly("backward", op_name(static_cast<uint32_t>(i)), where_of(static_cast<uint32_t>(i)), d);
      }
      reach(target, d);
    };
    if (n.op == ScalarOp::Custom) {
      const CustomOpEntry& c = customs_[n.a];
      values.clear();
      for (uint32_t j : c.operands) values.push_back(operand_value(state_, j));
      const std::vector<double> d = c.backward(n.grad, values, n.value);
      r = state_.records;  // the user's backward may have recorded Scalar ops, and the array moved
      if (d.size() != c.operands.size())
        throw std::logic_error(fmt::format("custom op '{}': backward returned {} gradients for {} inputs",
                                           c.name, d.size(), c.operands.size()));
      for (size_t k = 0; k < d.size(); ++k)
        if (!is_constant(c.operands[k])) contribute(r[c.operands[k]], d[k]);
      continue;
    }
    if (n.op == ScalarOp::Dot) {
      const uint32_t* list = state_.lists + n.a;
      apply_dot(
          n.b, n.grad, [&](uint32_t k) { return operand_value(state_, list[k]); },
          [list](uint32_t k) { return !is_constant(list[k]); },
          [&](uint32_t k, double d) { contribute(r[list[k]], d); });
      continue;
    }
    apply_rule(n.op, n.grad, operand_value(state_, n.a), operand_value(state_, n.b), n.value, !is_constant(n.a),
               !is_constant(n.b), [&](int k, double d) { contribute(r[k == 0 ? n.a : n.b], d); });
  }
  return static_cast<uint32_t>(i + 1);
}

// The recorded sweep (create_graph): the same rules on Scalars, so the backward is itself a graph.
// Returns the adjoint of every record up to top; `low` receives the lowest record reached.
RecordedAdjoints ScalarTape::sweep_recorded(uint32_t top, std::span<const Seed> seeds, uint32_t& low) {
  RecordedAdjoints adjoint(top);
  for (const Seed& s : seeds) adjoint[s.record] += s.scalar ? *s.scalar : Scalar(s.value);
  int64_t i = top;
  for (; i >= 0 && pending_ > 0; --i) {
    const ScalarRecord n = state_.records[i];  // a copy: recording below may move the array
    if (!reached(n)) continue;
    --pending_;
    if (n.op == ScalarOp::Leaf) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    if (n.op == ScalarOp::Custom)
      throw std::logic_error(fmt::format(
          "create_graph: the custom op '{}' has a first-order backward (on doubles) and cannot be "
          "differentiated twice",
          customs_[n.a].name));
    const Scalar g = adjoint[i];
    const auto index = static_cast<uint32_t>(i);
    auto add_adjoint = [&](uint32_t j, const Scalar& d) {
      if (AnomalyMode::enabled() && !std::isfinite(d.value()))
        throw_anomaly("backward", op_name(index), where_of(index), d.value());
      adjoint[j] = adjoint[j] + d;
      reach(record(j), d.value());
    };
    if (n.op == ScalarOp::Dot) {
      // A copy of its operands: the rule's ops below record only binary ops, but the lists may grow.
      const std::vector<uint32_t> list(state_.lists + n.a, state_.lists + n.a + n.b);
      run_backward_rule(op_name(index), where_of(index), [&] {
        apply_dot(
            n.b, g, [&](uint32_t k) { return handle_to(list[k]); }, [&](uint32_t k) { return !is_constant(list[k]); },
            [&](uint32_t k, const Scalar& d) { add_adjoint(list[k], d); });
      });
      continue;
    }
    const bool need_a = !is_constant(n.a);
    const bool need_b = !is_constant(n.b);
    const Scalar a = handle_to(n.a), b = handle_to(n.b), result = handle_to(static_cast<uint32_t>(i));
    run_backward_rule(op_name(index), where_of(index), [&] {
      apply_rule(n.op, g, a, b, result, need_a, need_b,
                 [&](int k, const Scalar& d) { add_adjoint(k == 0 ? n.a : n.b, d); });
    });
  }
  low = static_cast<uint32_t>(i + 1);
  return adjoint;
}

void ScalarTape::finish_sweep(uint32_t low, uint32_t top, bool free_graph) {
  if (!free_graph) return;
  bool all_dead = low == 0 && top + 1 == state_.size;  // then no handle names an unfreed record?
  for (uint32_t i = low; i <= top; ++i) {
    ScalarRecord& n = record(i);
    if (!reached(n) || n.freed) {
      all_dead = all_dead && !named_unfreed(n);
      continue;
    }
    n.freed = true;
    if (n.op == ScalarOp::Leaf) state_.leaves[n.a]->cached_generation = 0;  // a new graph enters it anew
  }
  if (all_dead) dead_below_ = state_.size;  // as the one-pass sweep says it (see prepare_op)
  ++state_.irregular;
}

void ScalarTape::backward(std::span<const Seed> seeds, BackwardOptions options) {
  if (state_.sweeping != 0) throw_nested("backward");
  const bool free_graph = !options.retain_graph && !options.create_graph;
  {
    SweepGuard guard(state_.sweeping);
    const bool fresh = !swept_;
    // The one-pass sweep cannot throw; the others may, and then leave every .grad as it was.
    const bool one_pass = !options.create_graph && state_.irregular == 0 && !AnomalyMode::enabled();
    std::optional<KeepInteriorGrads> until_done;
    if (!one_pass) until_done.emplace(*this);
    const uint32_t top = begin_sweep(seeds);
    BackwardSeeds& known = backward_seeds_[backward_seeds_next_++ % backward_seeds_.size()];
    known.generation = state_.generation;
    known.sweep = state_.sweep;
    known.records.clear();
    for (const Seed& s : seeds) known.records.push_back(s.record);
    if (one_pass) {
      if (free_graph) {
        if (fresh) sweep_one_pass<true, true>(top);
        else sweep_one_pass<true, false>(top);
      } else {
        if (fresh) sweep_one_pass<false, true>(top);
        else sweep_one_pass<false, false>(top);
      }
    } else {
      RecordedAdjoints adjoint;
      const uint32_t low = sweep(top, options.create_graph, seeds, adjoint);
      // The leaves' gradients change only once nothing can throw: the recorded sums (create_graph)
      // are recorded first, and may throw (anomaly mode, out of memory) with every leaf as it was.
      struct Recorded {
        LeafCell* cell;
        Scalar sum;
        std::unique_ptr<Scalar> holder;  // for a leaf without a recorded gradient yet
      };
      std::vector<Recorded> recorded;
      if (options.create_graph) {
        const GradModeGuard recording(true);
        std::unordered_map<LeafCell*, size_t> index;  // a leaf behind several Leaf records (its
                                                      // value changed between uses): one chain
        for (uint32_t i = low; i <= top; ++i) {
          const ScalarRecord& n = record(i);
          if (!reached(n) || n.op != ScalarOp::Leaf) continue;
          LeafCell* c = state_.leaves[n.a];
          if (!c->requires_grad) continue;
          auto [it, added] = index.try_emplace(c, recorded.size());
          if (!added) {
            recorded[it->second].sum = recorded[it->second].sum + adjoint[i];
            continue;
          }
          const Scalar before = c->grad_graph ? *c->grad_graph : Scalar(0.0);
          recorded.push_back({c, before + adjoint[i], c->grad_graph ? nullptr : std::make_unique<Scalar>()});
        }
      }
      for (uint32_t i = low; i <= top; ++i) {
        const ScalarRecord& n = record(i);
        if (reached(n) && n.op == ScalarOp::Leaf && state_.leaves[n.a]->requires_grad) state_.leaves[n.a]->grad += n.grad;
      }
      for (Recorded& r : recorded) {
        if (r.holder) r.cell->grad_graph = r.holder.release();
        *r.cell->grad_graph = std::move(r.sum);
      }
      finish_sweep(low, top, free_graph);
      until_done->keep();
    }
  }
  if (free_graph) state_.cold_at = 0;  // the next op looks whether the tape is unused now
}

uint32_t ScalarTape::sweep(uint32_t top, bool create_graph, std::span<const Seed> seeds,
                           RecordedAdjoints& adjoint) {
  if (create_graph) {
    GradModeGuard recording(true);
    uint32_t low = top;
    adjoint = sweep_recorded(top, seeds, low);
    return low;
  }
  return AnomalyMode::enabled() ? sweep_checked<true>(top) : sweep_checked<false>(top);
}

}  // namespace chainrule::detail
