// Uses chainrule through its installed (or add_subdirectory) headers and library. Exit status 0
// when d(x*x)/dx at 2 is 4 and a 2x2 matmul, which goes through OpenBLAS, is right: that link only
// succeeds if the package brings OpenBLAS along for the static library.
#include <cstdio>
#include <vector>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

int main() {
  chainrule::Scalar x = chainrule::Scalar::leaf(2.0);
  auto y = x * x;
  y.backward();
  if (x.grad() != 4.0) {
    std::fprintf(stderr, "consumer: d(x*x)/dx at 2 is %g, expected 4\n", x.grad());
    return 1;
  }

  const chainrule::Tensor a = chainrule::from_vector({1, 2, 3, 4}, {2, 2});
  const chainrule::Tensor b = chainrule::from_vector({5, 6, 7, 8}, {2, 2});
  if (chainrule::matmul(a, b).to_vector() != std::vector<double>{19, 22, 43, 50}) {
    std::fprintf(stderr, "consumer: [[1,2],[3,4]] @ [[5,6],[7,8]] is not [[19,22],[43,50]]\n");
    return 1;
  }
  std::puts("consumer: chainrule works");
  return 0;
}
