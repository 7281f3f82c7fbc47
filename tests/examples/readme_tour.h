#pragma once
// What README.md's "A quick tour" block leaves in its variables (tests/examples/readme_tour.cpp.in).
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

namespace chainrule::testing {

struct ReadmeTour {
  Scalar a, b, c;
  Tensor w;
  std::vector<Tensor> g, hvp;
};
ReadmeTour readme_tour();

}  // namespace chainrule::testing
