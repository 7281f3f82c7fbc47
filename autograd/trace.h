#pragma once
// Chain-rule traces: the arithmetic of a backward pass, written out as a teacher writes it.
//
// For every edge of the graph (an op that consumes an input), the trace shows
//   upstream gradient x local derivative = contribution
// where the upstream gradient is d root / d (the op's result) and the local derivative is
// d (the op's result) / d input. A node's gradient d root / d node is the sum of the contributions
// from all its consumers; the trace lists them and their sum wherever there are several.
//
// For networks of sigmoid (tanh, relu) neurons it also reads like the lecture's slides: for every
// activation a = f(z), Err = dC/da (the sum of what a's consumers send back) and
// Backprop Err = dC/dz, which is Err x f'(z) where a is z's only consumer (a lecture neuron).
//
//   Scalar x1 = Scalar::leaf(-0.97, false).set_label("X1");     // an input: no gradient
//   Scalar w = Scalar::leaf(-0.2).set_label("w IN1->H1");       // a parameter
//   Scalar h1 = sigmoid((x1 * w + 0.1).set_label("z_H1")).set_label("H1");
//   ...
//   C.backward();
//   ChainRuleTrace t = trace(C);
//   std::cout << t;                              // the text table (terminal)
//   t.to_markdown();                             // the same as Markdown tables
//   t.neuron("H1").err;                          // -0.0152
//   t.neuron("H1").bpe;                          // -0.00346
//
// Names: a node is shown by its label (set_label), a constant by its label or value, and an
// unlabelled op by the expression it computes from named operands ("H1 * w H1->ON"), or by its op
// and number ("add#12") when that would be long.
//
// Tensor graphs: trace_backward(loss) runs the backward itself and records, for every op it runs,
// the gradient the op received and what its backward sent to each input (a vector-Jacobian product,
// summed back to the input's shape). Tensors are summarised: all values up to 4 elements, else mean
// and range. A local derivative of a Tensor op is a Jacobian, so the terms show the products'
// results (the contributions) rather than "upstream x local".
#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "autograd/where.h"

namespace chainrule {

struct TraceOptions {
  int digits = 4;      // significant digits, or decimals when `fixed`
  bool fixed = false;  // fixed-point with `digits` decimals (the slides round to 3: 0.025, -0.015)
};

// One consumer edge of a node: the consumer's gradient times the local derivative.
struct TraceTerm {
  std::size_t consumer = 0;  // id of the op that uses the node
  std::size_t operand = 0;   // which of the consumer's operands the node is
  double upstream = 0;       // d root / d consumer
  double local = 0;          // d consumer / d node
  double contribution = 0;   // upstream * local
};

struct TraceNode {
  std::size_t id = 0;                // position in ChainRuleTrace::nodes (creation order)
  std::string name;                  // label, expression, or op#id
  std::string op;                    // "sigmoid", "mul", "leaf", "constant", a custom op's name
  double value = 0;
  double grad = 0;                   // d root / d node: the root's seed, or the sum of `terms`
                                     // (+ outside)
  // When the backward started at another output (ChainRuleTrace::from_root false): what reached
  // this node from consumers outside this trace, along paths to that output that avoid the root
  // (x in h = x * x, O = h + 10 x, traced at h after O.backward(): 10). 0 otherwise, and 0 for a
  // node a later backward reached again (its gradient there is gone: the sum of its terms shown).
  std::vector<std::size_t> inputs;   // ids of its operands
  std::vector<TraceTerm> terms;      // one per consumer edge (constants get none: no gradient flows)
  double outside = 0;
  bool is_leaf = false;              // a parameter (a leaf that requires grad)
  bool is_constant = false;          // a number, or a leaf that does not require grad (an input)
  bool is_root = false;
};

// The lecture's view of an activation a = f(z).
struct TraceNeuron {
  std::string name;       // the activation's name ("H1", "ON")
  std::size_t node = 0;   // id of a
  std::size_t input = 0;  // id of z
  double value = 0;       // a
  double err = 0;         // Err = dC/da
  double derivative = 0;  // f'(z), the local derivative of the activation
  double bpe = 0;         // Backprop Err = dC/dz (err * derivative where a is z's only consumer)
};

class ChainRuleTrace {
 public:
  std::vector<TraceNode> nodes;              // creation order: inputs before their consumers
  std::vector<std::size_t> backward_order;   // ids, root first (the order backward visits them)
  std::vector<TraceNeuron> neurons;          // sigmoid, tanh and relu nodes, in backward order
  double seed = 1;                           // root's gradient in the backward that was traced: 1 when
                                             // that backward started at the root
  bool from_root = true;                     // it started at the root (else every gradient shown is
                                             // d(the output it started at)/d node)
  bool reached = false;                      // a backward reached the root (its gradient may be 0)

  // By name; std::out_of_range listing the known names if there is none.
  const TraceNode& node(std::string_view name) const;
  const TraceNeuron& neuron(std::string_view name) const;

  // Fixed-width tables for a terminal: the neurons' Err and Backprop Err (if any), then every node
  // in backward order with its gradient as the sum of its terms.
  std::string to_text(TraceOptions options = {}) const;
  // The same tables in Markdown (GitHub pipe tables).
  std::string to_markdown(TraceOptions options = {}) const;
};
std::ostream& operator<<(std::ostream& os, const ChainRuleTrace& trace);  // to_text()

// The trace of the last backward from `root`: call root.backward() first (std::logic_error
// otherwise). The numbers are recomputed edge by edge from the recorded local derivatives, seeded
// with the root's gradient, which is exactly what the backward summed. Needs the graph alive (hold
// `root`; a graph freed by backward() can still be traced).
ChainRuleTrace trace(const Scalar& root);

// ---- Tensor graphs ----

// What one consumer's backward sent to a node.
struct TensorTraceTerm {
  std::size_t consumer = 0;  // id of the op whose backward sent it
  std::size_t operand = 0;   // which of the consumer's inputs the node is
  Tensor contribution;       // d root / d node through this consumer, in the node's shape
};

struct TensorTraceNode {
  std::size_t id = 0;       // position in TensorTrace::nodes: the order the backward ran, root first
  std::string name;         // the name given in `names` (a parameter's, or an op's output's), else
                            // the op ("matmul", or "add#3" when several ops share a name,
                            // numbered in recording order: linear#1 is the first layer) or
                            // "parameter#k"; unique in the trace (a repeat is numbered on)
  std::string op;           // the op, "parameter", or "input" for a leaf whose requires_grad was
                            // turned off after recording (the sweep gives it nothing)
  Shape shape;              // the op's output shape, or the parameter's shape
  Where where;              // where the op was recorded (empty for parameters)
  Tensor value;             // the output where it is known: the root's, a parameter's, an op's whose
                            // output was named in `names` (else undefined: the graph keeps none)
  Tensor grad;              // d root / d node: the seed for the root, else the sum of the terms
  std::vector<TensorTraceTerm> terms;
  bool is_leaf = false, is_root = false;
};

class TensorTrace {
 public:
  std::vector<TensorTraceNode> nodes;

  // By name; std::out_of_range listing the known names if there is none.
  const TensorTraceNode& node(std::string_view name) const;
  // Fixed-width table for a terminal / Markdown table: node, op, shape, recorded at, value (where
  // known), gradient, and the terms (with their sum where there are several).
  std::string to_text(TraceOptions options = {}) const;
  std::string to_markdown(TraceOptions options = {}) const;
};
std::ostream& operator<<(std::ostream& os, const TensorTrace& trace);  // to_text()

// Runs root.backward(options) (a one-element root, seed 1) and traces it. Leaves' gradients
// accumulate as with backward(). `names` names parameters, e.g. model->named_parameters(), and
// may name ops by the tensors they produced ({"hidden", h}), whose values the trace then shows.
//   TensorTrace t = trace_backward(loss, model->named_parameters());
//   std::cout << t;
TensorTrace trace_backward(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& names = {},
                           BackwardOptions options = {});

}  // namespace chainrule
