// matmul/chainrule_tensor: the product as a training graph records it: A and B are leaves that
// require grad, C = matmul(A, B) is recorded (forward), and C.backward(G) runs matmul's rule, whose
// two products land in A.grad() and B.grad() (forward_backward; both gradients are dropped with
// zero_grad() before the next iteration, so each backward starts from none).
#include "autograd/tensor.h"
#include "bench/matmul.h"

namespace chainrule::bench::matmul {
namespace {

template <class T>
class ChainruleProduct {
 public:
  explicit ChainruleProduct(const Problem& p) {
    const DType dtype = sizeof(T) == 8 ? DType::float64 : DType::float32;
    const auto param = TensorOptions(dtype).requires_grad(true);
    a_ = from_vector(p.a, {p.n, p.n}, param);
    b_ = from_vector(p.b, {p.n, p.n}, param);
    g_ = from_vector(p.g, {p.n, p.n}, dtype);
  }

  void forward() { c_ = chainrule::matmul(a_, b_); }
  void forward_backward() {
    a_.zero_grad();
    b_.zero_grad();
    forward();
    c_.backward(g_);
  }
  std::vector<std::vector<double>> results(Pass pass) const {
    std::vector<std::vector<double>> out{c_.to_vector()};
    if (pass == Pass::forward_backward) {
      out.push_back(a_.grad().to_vector());
      out.push_back(b_.grad().to_vector());
    }
    return out;
  }

 private:
  Tensor a_, b_, g_, c_;
};

[[maybe_unused]] const bool registered = add<ChainruleProduct>("chainrule_tensor");

}  // namespace
}  // namespace chainrule::bench::matmul
