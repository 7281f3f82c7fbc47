#pragma once
// optim::Optimizer: the base of SGD, Adam, AdamW, RMSprop and Adagrad. It holds the parameters (Tensor handles: the
// same tensors the model uses) and the learning rate; step() updates every parameter that has a
// gradient, in place and under NoGradGuard, so the update is not recorded and handles held by the
// model see the new values. A parameter whose grad() is undefined (it took no part in the last
// backward) is skipped, as PyTorch does. Parameters may come in groups with their own learning
// rate and weight decay (ParamGroup, torch's param_groups).
//
// The in-place updates bump the parameters' version counters: a graph recorded before step() that
// saved a parameter refuses to run backward afterwards (std::logic_error) instead of using the new
// values. Build a fresh graph (forward again) after each step.
//
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.5));
//   for (int epoch = 0; epoch < 1000; ++epoch) {
//     opt.zero_grad();
//     Tensor loss = criterion(model->forward(x), y);
//     loss.backward();
//     opt.step();
//   }
//
// or, when nothing reads the gradients between backward and step (no clipping, no logging of
// them), the same loop with `opt.backward_and_step(criterion(model->forward(x), y));` as its body,
// which SGD runs fused (fewer passes over memory; see backward_and_step).
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/tensor.h"

namespace chainrule::optim {

// Parameters that share a learning rate, a weight decay and a momentum (torch's param_groups);
// unset ones are the optimizer's options'. parameters() lists every group's in order. The momentum
// is SGD's and RMSprop's momentum, Adam's and AdamW's beta1 (checked as set_momentum checks it);
// Adagrad, which has none, refuses a group that sets one.
//   optim::AdamW opt({optim::ParamGroup(weights), optim::ParamGroup(biases).weight_decay(0.0)},
//                    optim::AdamWOptions(1e-3));
//   optim::SGD sgd({optim::ParamGroup(body), optim::ParamGroup(head).momentum(0.5)},
//                  optim::SGDOptions(0.1).momentum(0.9));
struct ParamGroup {
  explicit ParamGroup(std::vector<Tensor> p) : params(std::move(p)) {}
  ParamGroup& lr(double v) { lr_ = v; return *this; }
  ParamGroup& weight_decay(double v) { weight_decay_ = v; return *this; }
  ParamGroup& momentum(double v) { momentum_ = v; return *this; }
  const std::optional<double>& lr() const { return lr_; }
  const std::optional<double>& weight_decay() const { return weight_decay_; }
  const std::optional<double>& momentum() const { return momentum_; }

  std::vector<Tensor> params;

 private:
  std::optional<double> lr_, weight_decay_, momentum_;
};

class Optimizer {
 public:
  // Every group non-empty, of defined leaf tensors, none listed twice (std::invalid_argument naming
  // `name` and the position in parameters() otherwise); every rate >= 0 and every weight decay
  // finite and >= 0 (std::invalid_argument with the value and the group).
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, std::string name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // loss.backward(), step() and zero_grad() in one call: the update uses the gradients of this
  // backward plus any the parameters had accumulated, and leaves every parameter's grad()
  // undefined. A state that no longer fits its parameter (check_states) throws before the
  // backward, so that the call changes nothing. Optimizers that can do better override it: SGD without momentum adds each
  // product-shaped gradient (a Dense layer's weight) straight into the parameter during the
  // sweep's last stage, never storing it (see backward_and_update in autograd/tensor.h); the
  // results equal the three calls to rounding. loss must be a one-element tensor.
  virtual void backward_and_step(const Tensor& loss);
  // Drops every parameter's gradient (grad() becomes undefined, as torch's set_to_none=True).
  void zero_grad();

  // The learning rate used by the next step() (the first group's); set_lr sets every group's (>= 0,
  // else std::invalid_argument). Schedulers scale each group's rate.
  double get_lr() const { return groups_.front().lr; }
  void set_lr(double lr);
  // Groups (ParamGroup), in construction order: their count, each one's rate (set_lr(g, lr) as
  // above; std::out_of_range past the last group), weight decay and parameters' positions.
  size_t num_groups() const { return groups_.size(); }
  double get_lr(size_t group) const;
  void set_lr(size_t group, double lr);
  // Every group's rate at once, in group order; set_lr(rates) takes one per group, each >= 0 and
  // finite, all checked before any is set, so a throw changes nothing (std::invalid_argument).
  std::vector<double> get_lrs() const;
  void set_lr(const std::vector<double>& rates);
  double weight_decay(size_t group) const;
  // The momentum each group's next step uses, where the optimizer has one: SGD's and RMSprop's
  // momentum, Adam's and AdamW's beta1 (torch's group 'momentum' and 'betas'[0], which OneCycleLR
  // and CyclicLR cycle); Adagrad has none (has_momentum() false; the accessors then throw
  // std::logic_error). set_momentum takes a value in [0, 1) (SGD with nesterov: > 0; RMSprop: any
  // finite value >= 0, as its option), else std::invalid_argument; set_momenta one per group, all
  // checked before any is set.
  bool has_momentum() const { return !momenta_.empty(); }
  double get_momentum(size_t group) const;
  std::vector<double> get_momenta() const;
  void set_momentum(size_t group, double momentum);
  void set_momenta(const std::vector<double>& momenta);
  // torch's initial_lr: each group's rate when the first learning-rate scheduler (LRScheduler) was
  // built on this optimizer, recorded then (the current rates until one is); every LRScheduler
  // takes its base rates from it, so that one built after another (SequentialLR's, a chain's)
  // starts from the same rates, not from what the first one's epoch 0 left.
  std::vector<double> initial_lrs() const { return initial_lrs_.empty() ? get_lrs() : initial_lrs_; }
  // The group of parameter i (std::out_of_range past the last parameter).
  size_t group_of(size_t i) const;

  const std::vector<Tensor>& parameters() const { return params_; }
  const std::string& name() const { return name_; }

  // The optimizer's state as named tensors, each a copy (torch's optimizer.state_dict(), with the
  // nesting spelled in the names): "lr", a float64 tensor of the groups' current rates (a scheduler
  // may have changed them), one per group, "momentum" likewise where has_momentum() (a file
  // without it loads, the momenta staying as they are), and each parameter's state under "<i>.<field>", i its position
  // in parameters(): SGD "<i>.momentum_buffer"; Adam and AdamW "<i>.step" (a one-element float64
  // tensor), "<i>.exp_avg", "<i>.exp_avg_sq" and, with amsgrad, "<i>.max_exp_avg_sq"; RMSprop
  // "<i>.step", "<i>.square_avg" and "<i>.momentum_buffer" / "<i>.grad_avg" when used; Adagrad
  // "<i>.step" and "<i>.sum". A parameter
  // not stepped yet has no entries. The other hyperparameters (momentum, betas, ...) are the
  // constructor's, as are the parameters themselves (nn::save keeps those). optim::save writes
  // this to a file, so that training resumes exactly where it stopped.
  std::map<std::string, Tensor> state_dict() const;
  // Replaces the rate and the whole state with copies of `state`, in state_dict()'s form (from an
  // optimizer of the same kind over parameters of the same shapes and dtypes): a parameter with no
  // entries starts afresh. All-or-nothing: std::invalid_argument lists every problem (a missing
  // "lr" or one of another group count, an unknown name, a parameter index past the last, a shape or dtype other than the
  // parameter's, part of a parameter's fields, a rate or step out of range) and changes nothing.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // The per-parameter state a subclass keeps (for state_dict): its fields' names, in one order,
  // each either a tensor shaped and typed as its parameter or (counter) a step count held as a
  // one-element float64 tensor; get_state returns parameter i's fields in that order (undefined
  // tensors before its first step), set_state replaces them (all defined, or all undefined: start
  // afresh) with tensors load_state_dict has checked and copied. An optional field may be
  // undefined beside defined ones (RMSprop's momentum buffer, made at the first step whose group
  // momentum is > 0).
  struct StateField {
    const char* name;
    bool counter = false;
    bool optional = false;
  };
  virtual std::vector<StateField> state_fields() const { return {}; }
  virtual std::vector<Tensor> get_state(size_t /*i*/) const { return {}; }
  virtual void set_state(size_t /*i*/, std::vector<Tensor> /*fields*/) {}

  // Throws std::invalid_argument when a parameter's gradient no longer matches it (e.g. the model
  // was converted with to() after the optimizer was built).
  void check_grad(size_t i, const Tensor& grad) const;
  // Throws std::invalid_argument when a parameter's state (`what`: "momentum buffer", ...) no longer
  // has its dtype. Optimizers run every check before their first write, so that a step that throws
  // changes no parameter and no state.
  void check_state(size_t i, const Tensor& state, const char* what) const;
  // Per-parameter state accessors (`accessor`: "state", "momentum_buffer"): std::out_of_range
  // naming the call, i and the parameter count when i is past the last parameter.
  void check_index(size_t i, const char* accessor) const;
  // check_state for every parameter that has a state (backward_and_step runs it before the
  // backward; step() checks those it updates).
  virtual void check_states() const {}
  // The two sets of checks for a subclass whose state_of(i) is a tensor of parameter i's state, or
  // nullptr before its first step: check_grads_and_states is step()'s (every parameter that has a
  // gradient, and its state), check_all_states is check_states()'s.
  template <class StateOf>
  void check_grads_and_states(StateOf state_of) const {
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor g = params_[i].grad();
      if (!g.defined()) continue;
      check_grad(i, g);
      if (const Tensor* s = state_of(i)) check_state(i, *s, "state");
    }
  }
  template <class StateOf>
  void check_all_states(StateOf state_of) const {
    for (size_t i = 0; i < params_.size(); ++i)
      if (const Tensor* s = state_of(i)) check_state(i, *s, "state");
  }

  // Runs update(), step()'s writes after its checks. Anomaly mode checks every op of an update, so
  // an update may throw part-way (a value that overflowed to inf): under it, the parameters' and
  // the state's tensors (`tensors(entry, add)` calls add on each tensor of one state entry) are
  // kept, bytes and version counters, with a copy of `state`, and put back if it throws. Without
  // anomaly mode the update runs as it is (nothing in it throws once the checks passed).
  template <class State, class Tensors>
  void update_or_undo(std::vector<State>& state, const std::function<void()>& update, Tensors tensors) {
    if (!AnomalyMode::enabled()) return update();
    Snapshot written;
    for (size_t i = 0; i < params_.size(); ++i) {
      written.add(params_[i]);
      tensors(state[i], [&](const Tensor& t) { written.add(t); });
    }
    const std::vector<State> saved = state;
    try {
      update();
    } catch (...) {
      state = saved;
      written.restore();
      throw;
    }
  }

  // Bytes and version counters of tensors, put back by restore().
  class Snapshot {
   public:
    void add(const Tensor& t);  // undefined tensors are skipped
    void restore() noexcept;

   private:
    struct Saved {
      Tensor tensor;
      std::vector<std::byte> bytes;
      uint32_t version;
    };
    std::vector<Saved> saved_;
  };

  // Gives every group the momentum `m`, or the one its ParamGroup set (each checked as
  // set_momentum's, naming the group): a subclass with a momentum calls it once from its
  // constructor, and reads parameter i's with momentum_of(i). A subclass without one calls
  // refuse_group_momenta() instead (std::invalid_argument if a ParamGroup set a momentum).
  void enable_momentum(double m);
  void refuse_group_momenta() const;
  double momentum_of(size_t i) const { return momenta_[group_of_[i]]; }
  // The subclass's rule for a momentum (what name, e.g. "beta1", and which range), std::invalid_argument
  // naming it; the base's: [0, 1).
  virtual void check_momentum(double m) const;

  // Parameter i's group's rate and weight decay.
  double lr_of(size_t i) const { return groups_[group_of_[i]].lr; }
  double weight_decay_of(size_t i) const { return groups_[group_of_[i]].weight_decay; }

  std::vector<Tensor> params_;
  std::string name_;

 private:
  struct Group {
    double lr, weight_decay;
  };
  std::vector<Group> groups_;
  friend class LRScheduler;         // records initial_lrs_ once built
  std::vector<double> initial_lrs_;  // empty until the first LRScheduler
  std::vector<double> momenta_;      // per group; empty without a momentum
  std::vector<std::optional<double>> group_momenta_;  // per group, as its ParamGroup set it
  std::vector<size_t> group_of_;  // per parameter
  void check_group(size_t group, const char* accessor) const;
};

}  // namespace chainrule::optim
