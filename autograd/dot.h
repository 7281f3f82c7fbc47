#pragma once
// Graphviz pictures of recorded graphs (the DOT language; render with `dot -Tsvg graph.dot -o graph.svg`).
//
// Scalar graphs: one box per node with its name, op, value and (after a backward) gradient; edges
// run from an input to the op that consumes it and are labelled with the local derivative
// d(consumer)/d(input), so that the gradient of a node is the sum over its out-edges of
// (the consumer's gradient x the edge's label). Parameters (leaves that require grad) are blue
// rounded boxes, inputs and constants grey ellipses (their edges dashed: no gradient flows to
// them), the output an orange double box.
//
// Tensor graphs: one box per recorded op with its output shape (and its values, summarised, where
// known: the output, parameters, and every op's inputs when the graph was recorded under
// detail::ReplayGuard); edges are labelled with the shape that flows. Parameters show their name
// (from DotOptions::names), a summary of their values, and their .grad as accumulated (every
// backward since zero_grad, from whichever output: the graph keeps no per-node gradients; a
// trace_backward shows the gradients of one backward). Ops show a name given to the tensor they
// produced. Inputs that do not require grad are drawn as unnamed constants.
//
//   C.backward();
//   write_dot("observation1.dot", C, {.title = "observation 1"});
//   // $ dot -Tsvg observation1.dot -o observation1.svg
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

namespace chainrule {

struct DotOptions {
  std::string title = {};      // a caption under the picture ("" for none)
  int digits = 4;              // significant digits of numbers, or decimals when `fixed`
  bool fixed = false;
  bool legend = true;          // a line under the picture saying what shapes, colours and labels mean
  bool show_where = false;     // file:line of each op (Scalars: tracked under TrackLocationsGuard)
  std::string rankdir = "LR";  // layout direction: "LR" (inputs on the left), "TB", "RL" or "BT"
  // Tensor graphs: names shown on these tensors' nodes (parameters, and ops by the tensor they
  // produced), e.g. model->named_parameters().
  std::vector<std::pair<std::string, Tensor>> names = {};
};

// The DOT text of the graph below `root`. Scalars: gradients are shown when a backward has reached
// `root` (the numbers of that backward); Tensors: parameters' .grad (above). Values always.
// Throws std::invalid_argument for a bad rankdir.
std::string to_dot(const Scalar& root, const DotOptions& options = {});
std::string to_dot(const Tensor& root, const DotOptions& options = {});
// to_dot's text written to `path`; std::runtime_error naming the path and the system's reason when
// it cannot be written. A FIFO is written as a file: opening one waits for a reader (so that
// `--dot /dev/stdout | dot -Tsvg` works). A graph of many thousand nodes makes a file Graphviz
// takes long to lay out: draw a small model, or one observation, as the lecture does.
void write_dot(const std::filesystem::path& path, const Scalar& root, const DotOptions& options = {});
void write_dot(const std::filesystem::path& path, const Tensor& root, const DotOptions& options = {});

// Quotes `text` as a DOT string: "..." with backslashes, quotes and line breaks escaped, '&' as
// &amp; (Graphviz decodes entities), bytes that are not UTF-8 replaced by U+FFFD, and cut after
// 2,000 bytes with "..." (Graphviz refuses strings over 16,384).
std::string dot_quote(const std::string& text);

}  // namespace chainrule
