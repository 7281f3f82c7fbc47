// Uses chainrule through its installed (or add_subdirectory) headers and library: d(x*x)/dx at 2.
#include "autograd/scalar.h"

int main() {
  chainrule::Scalar x = chainrule::Scalar::leaf(2.0);
  auto y = x * x;
  y.backward();
  return x.grad() == 4.0 ? 0 : 1;
}
