#pragma once
// Tensor: an n-dimensional, row-major, float32 or float64 array in a dynamic graph.
//
// A Tensor is a cheap handle (one pointer); copies are shallow and name the same tensor, as in
// LibTorch. Every op returns a new contiguous tensor (no views), so an in-place change is visible
// only through handles to that tensor; the exceptions are the no-ops `to` the tensor's own dtype
// and `expand`/`sum_to` its own shape, which return the tensor itself, as PyTorch's do. Ops on tensors that require grad are recorded while
// GradMode is on; y.backward() sweeps the recorded graph in reverse (iteratively: never recursive)
// and accumulates into the .grad() of leaves.
//
//   Generator gen(42);
//   Tensor w = uniform({3, 2}, -1, 1, gen, TensorOptions().dtype(DType::float64).requires_grad(true));
//   Tensor x = tensor({{-0.97, -0.80}}, DType::float64);       // [1, 2]
//   Tensor y = sigmoid(matmul(x, transpose(w, 0, 1)));          // [1, 3]
//   sum(y).backward();
//   w.grad();                                                    // [3, 2]
//
// dtypes: float32 (the default, as LibTorch) and float64. Mixing them in one op is an error unless
// one side is a plain number (numbers adopt the tensor's dtype) or the user converts with to().
// Broadcasting follows NumPy for every elementwise op. Errors throw std::invalid_argument (shapes,
// dtypes), std::out_of_range (indices, dims) or std::logic_error (graph misuse), naming the op; a
// tensor too large to allocate throws std::bad_alloc whose what() names its dtype, shape and bytes.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <iosfwd>
#include <random>
#include <source_location>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/pool.h"
#include "autograd/ref.h"
#include "autograd/shape.h"
#include "autograd/where.h"

namespace chainrule {

enum class DType : uint8_t { float32, float64 };
const char* dtype_name(DType d);
inline int64_t dtype_size(DType d) { return d == DType::float32 ? 4 : 8; }

struct TensorOptions {
  DType dtype_ = DType::float32;
  bool requires_grad_ = false;
  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}  // NOLINT: `zeros({2}, DType::float64)`
  TensorOptions& dtype(DType d) { dtype_ = d; return *this; }
  TensorOptions& requires_grad(bool on = true) { requires_grad_ = on; return *this; }
};

namespace detail {
struct Node;

// Internal (the graph behind it: autograd/tensor_impl.h). Defined here, not there, so that a
// Tensor handle's copy, move and destruction inline into every op: a one-element op makes and
// drops a dozen handles.

// Bytes of a tensor, shared by every handle that names it. `version` counts in-place writes.
// A small tensor is one pool block: its TensorImpl, this header and the bytes (detail::empty, in
// tensor_impl.h); a bigger one has its header and its bytes in blocks of their own.
struct Storage {
  uint32_t refs = 0;
  uint32_t version = 0;
  int64_t bytes = 0;
  void* data = nullptr;
  // Of a small tensor's block: how many of its two objects (the TensorImpl and this Storage) are
  // alive; the last one frees the block. 0: a storage of its own.
  uint32_t block_users = 0;
  static Ref<Storage> allocate(int64_t bytes);  // uninitialised, a block of its own
  static void destroy(Storage* s);
};

struct TensorImpl : Pooled {
  uint32_t refs = 0;
  DType dtype = DType::float32;
  bool requires_grad = false;
  bool wrapped_number = false;  // made from a plain number: adopts the other operand's dtype
  bool in_block = false;        // shares a pool block with its first storage (Storage::block_users)
  Shape shape;
  int64_t numel = 0;
  Ref<Storage> storage;
  Ref<Node> grad_fn;        // null for leaves and constants
  Ref<TensorImpl> grad;     // accumulated gradient (leaves)
  // Scratch for one sweep (leaves): the index of this leaf's gradient in the sweep's list, valid
  // while `sweep` is the running sweep's id. Stored here so that the sweep needs no hash map.
  uint64_t sweep = 0;
  uint32_t sweep_slot = 0;
  // The shape is copied in, never zeroed first: a tiny op makes one of these per result. Defined
  // in tensor_impl.h, where Node is complete.
  inline TensorImpl(DType d, const Shape& s, int64_t n);
  TensorImpl(const TensorImpl&) = delete;  // in_block belongs to the object where it was made
  TensorImpl& operator=(const TensorImpl&) = delete;
  template <class T> T* data() const { return static_cast<T*>(storage->data); }
  static void destroy(TensorImpl* t);  // out of line: Node is incomplete here
};
}  // namespace detail

// A nested list of numbers for tensor({{1, 2}, {3, 4}}). Rows must be rectangular.
class NestedList {
 public:
  NestedList(double v) : value_(v), is_number_(true) {}  // NOLINT
  NestedList(std::initializer_list<NestedList> items) : items_(items) {}
  bool is_number() const { return is_number_; }
  double value() const { return value_; }
  const std::vector<NestedList>& items() const { return items_; }

 private:
  double value_ = 0;
  bool is_number_ = false;
  std::vector<NestedList> items_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() == false
  // A 0-d tensor from a number. The number adopts the dtype of the tensor it meets in an op.
  Tensor(double number);  // NOLINT(google-explicit-constructor)
  explicit Tensor(Ref<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return static_cast<bool>(impl_); }
  DType dtype() const;
  const Shape& shape() const;
  int dim() const { return shape().size(); }
  int64_t size(int64_t d) const;
  int64_t numel() const;

  // Element access (bounds-checked, std::out_of_range). set() changes the tensor in place;
  // std::logic_error while recording on a tensor that requires grad (a leaf, or an op's result:
  // the write is not recorded).
  double item() const;  // one-element tensors only
  double at(std::initializer_list<int64_t> index) const;
  void set(std::initializer_list<int64_t> index, double value);
  std::vector<double> to_vector() const;  // row-major values as doubles
  template <class T> const T* data() const;  // T must match dtype() (std::invalid_argument)
  template <class T> T* mutable_data();      // bumps the version counter

  // Autograd.
  bool requires_grad() const;
  // Leaves only. Turned off, the leaf takes no gradient from any backward from then on, of graphs
  // recorded before included (as PyTorch's AccumulateGrad). Turned on, it takes gradients from ops
  // recorded from then on: an op recorded before used it as a constant, and so does that op's
  // backward under create_graph (PyTorch's saved tensor would be the tensor as it is now, so a
  // second-order gradient through that op reaches it there and not here).
  // A handle's methods change the tensor it names, not the handle, so they work through a const
  // reference too (as ATen's): `dense->weight().set_requires_grad(false)` freezes a layer's weight.
  Tensor& set_requires_grad(bool on);
  const Tensor& set_requires_grad(bool on) const;
  bool is_leaf() const;
  Tensor grad() const;    // undefined until a backward reaches this leaf
  void zero_grad() const;  // drops the accumulated gradient
  void backward(BackwardOptions options = {}) const;  // one-element tensors: seed 1
  void backward(const Tensor& seed, BackwardOptions options = {}) const;
  Tensor detach() const;  // same values, new tensor, no history
  // A copy that keeps history (differentiable): recorded as 1 * x (a 'mul') where it is called.
  Tensor clone(Where where = Where::current()) const;
  std::string grad_fn_name() const;  // "" for leaves
  uint32_t version() const;

  // Conversion (differentiable).
  Tensor to(DType dtype, Where where = Where::current()) const;

  // In-place updates (see in-place rules in the README): guarded by version counters.
  Tensor& operator+=(Located<Tensor> o);
  Tensor& operator-=(Located<Tensor> o);
  Tensor& operator*=(Located<Tensor> o);
  // self += alpha * other (PyTorch's add_): the optimizers' update, one pass and no temporary when
  // nothing records (other broadcasts to self's shape; the same rules as +=).
  Tensor& add_(const Tensor& other, double alpha = 1.0, Where where = Where::current());

  detail::TensorImpl* impl() const { return impl_.get(); }
  // Exchanges the tensors two handles name, without touching either's count.
  friend void swap(Tensor& a, Tensor& b) noexcept { a.impl_.swap(b.impl_); }
  const Ref<detail::TensorImpl>& impl_ref() const { return impl_; }

 private:
  Ref<detail::TensorImpl> impl_;
};

// A seedable random generator with its own distributions, so that a seed gives the same numbers
// with every standard library.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  // std::invalid_argument for a bound, mean or stddev that is not finite, low > high, stddev < 0.
  double uniform(double low, double high);  // [low, high)
  double normal(double mean, double stddev);
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Creation.
Tensor tensor(const NestedList& values, TensorOptions options = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// [start, stop) by step; std::invalid_argument for a step of 0, a non-finite bound or step, or a
// step that leads away from stop (as PyTorch). start == stop gives an empty tensor.
Tensor arange(double start, double stop, double step = 1.0, TensorOptions options = {});
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, TensorOptions options = {});
Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen, TensorOptions options = {});

// Elementwise ops (NumPy broadcasting). Rules: autograd/ops.h. Every op records where it was
// called (autograd/where.h) for gradcheck's and anomaly mode's messages.
Tensor operator+(const Tensor& a, Located<Tensor> b);
Tensor operator-(const Tensor& a, Located<Tensor> b);
Tensor operator*(const Tensor& a, Located<Tensor> b);
Tensor operator/(const Tensor& a, Located<Tensor> b);
Tensor operator-(Located<Tensor> x);
Tensor pow(const Tensor& base, const Tensor& exponent, Where where = Where::current());
Tensor exp(const Tensor& x, Where where = Where::current());
Tensor log(const Tensor& x, Where where = Where::current());
Tensor sqrt(const Tensor& x, Where where = Where::current());
Tensor sigmoid(const Tensor& x, Where where = Where::current());
Tensor tanh(const Tensor& x, Where where = Where::current());
Tensor relu(const Tensor& x, Where where = Where::current());  // relu'(0) = 0
Tensor abs(const Tensor& x, Where where = Where::current());   // abs'(0) = 0
Tensor erf(const Tensor& x, Where where = Where::current());   // the error function
Tensor expm1(const Tensor& x, Where where = Where::current()); // e^x - 1, exact for tiny x
Tensor log1p(const Tensor& x, Where where = Where::current()); // ln(1 + x), exact for tiny x

// Non-differentiable masks (results never require grad).
Tensor step(const Tensor& x);                  // 0 where x <= 0, else 1 (NaN: 1)
Tensor sign(const Tensor& x);                  // -1, 0, 1
Tensor equal(const Tensor& a, const Tensor& b);  // 1 where a == b (broadcasting), else 0
Tensor isnan(const Tensor& x);                 // 1 where x is NaN, else 0
// Select (torch.where): x where condition != 0, else y, broadcasting all three (a plain number for
// x or y adopts the other's dtype). Differentiable in x and y, never in condition; the gradient is
// selected, not multiplied by a mask, so an infinite or NaN gradient in the branch not taken gives
// 0, not NaN. (A NaN or infinity inside the untaken branch's own derivative still propagates, as
// in PyTorch and JAX: make that branch's input safe with where as well.)
Tensor where(const Tensor& condition, const Tensor& x, const Tensor& y, Where at = Where::current());
// Clamps into [min, max] (either bound may be absent, not both: std::invalid_argument), as
// torch.clamp: min(max(x, min), max), so min > max gives max everywhere; NaN stays NaN. Composed
// of where(): the gradient passes where min <= x <= max (bounds included, as PyTorch) and is 0
// elsewhere.
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max, Where where = Where::current());
// The rules at kinks and edges (autograd/ops.h: relu_grad, pow_grad_a, pow_grad_b) on Tensors,
// for create_graph: where() selects 0 where the rule is 0, and the recorded formula elsewhere.
Tensor relu_grad(const Tensor& grad, const Tensor& x);
Tensor pow_grad_a(const Tensor& grad, const Tensor& a, const Tensor& b);
Tensor pow_grad_b(const Tensor& grad, const Tensor& a, const Tensor& b, const Tensor& result);

// Reductions. `dims` empty = all elements. Negative dims count from the end. Over no elements
// (a 0 in a reduced dim), as PyTorch: sum gives 0, mean NaN, and max throws std::invalid_argument.
Tensor sum(const Tensor& x, Where where = Where::current());
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, Where where = Where::current());
Tensor mean(const Tensor& x, Where where = Where::current());
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, Where where = Where::current());
// Maximum; the gradient is shared equally among tied maxima (as torch.amax). NaN propagates: the
// maximum of a slice holding NaN is NaN, and its gradient is shared among the NaNs (as PyTorch).
Tensor max(const Tensor& x, Where where = Where::current());
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, Where where = Where::current());
// Minimum, composed: -max(-x), so the same rules (ties share the gradient; NaN propagates).
Tensor min(const Tensor& x, Where where = Where::current());
Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, Where where = Where::current());
// Variance, composed: sum((x - mean)^2) / (n - correction), n the elements reduced into each
// result; correction 1 (the default, as torch.var) is the unbiased estimate, 0 the biased one.
// n <= correction divides by zero or less, giving NaN or inf, as PyTorch (which also warns).
// std = sqrt(var): its gradient where the variance is 0 is NaN (0 / 0), as PyTorch's.
Tensor var(const Tensor& x, Where where = Where::current());
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, double correction = 1,
           Where where = Where::current());
Tensor std(const Tensor& x, Where where = Where::current());
Tensor std(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, double correction = 1,
           Where where = Where::current());

// Linear algebra: 2-D [n,k]@[k,m] -> [n,m]; batched over leading dims (broadcast), CBLAS underneath.
// 1-D operands are promoted as in NumPy ([k] @ [k,m] -> [m]).
Tensor matmul(const Tensor& a, const Tensor& b, Where where = Where::current());
// An affine map, as torch.nn.functional.linear (and nn::Dense): y = x @ weight^T + bias, one gemm
// that reads weight transposed in place (no copy), bias added to every row.
//   x [..., in] (at least 1 dim)   weight [out, in]   bias [out], or an undefined Tensor for none
//   y [..., out]; dx = grad @ weight, dweight = grad^T @ x (over every row of x), dbias = grad
//   summed over its rows. One dtype for all three; std::invalid_argument naming linear and the
//   shapes otherwise.
//   Tensor w = tensor({{1, 2}, {3, 4}, {5, 6}});                   // [3, 2]: 2 inputs, 3 outputs
//   Tensor y = linear(tensor({{1, 1}}), w, tensor({0.5, 0, -0.5}));  // [[3.5, 7, 10.5]]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Where where = Where::current());

// Shape ops (all return new contiguous tensors; expand and sum_to to the same shape return x).
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims, Where where = Where::current());
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1, Where where = Where::current());
Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape, Where where = Where::current());  // one -1 allowed
// The same for a temporary (or std::move(x)): when no other handle and no recorded graph can see
// x's bytes and x is not a leaf that requires grad, the result takes them without a copy and x is
// left undefined; otherwise a copy, as above. Never a view: no two live tensors share bytes.
Tensor reshape(Tensor&& x, const std::vector<int64_t>& shape, Where where = Where::current());
Tensor expand(const Tensor& x, const Shape& shape, Where where = Where::current());  // broadcast to shape
Tensor sum_to(const Tensor& x, const Shape& shape);  // sum broadcast dims back down to shape
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t stop, Where where = Where::current());  // [start, stop)
Tensor concat(const std::vector<Tensor>& xs, int64_t dim, Where where = Where::current());
Tensor stack(const std::vector<Tensor>& xs, int64_t dim, Where where = Where::current());
// Reshapes that drop a dim of size 1 (squeeze(x, dim); a dim of another size is kept, as
// torch.squeeze; squeeze(x): every dim of size 1) or insert one at `dim` in [-(n + 1), n]
// (unsqueeze; negative counts from the end of the result).
Tensor squeeze(const Tensor& x, Where where = Where::current());
Tensor squeeze(const Tensor& x, int64_t dim, Where where = Where::current());
Tensor unsqueeze(const Tensor& x, int64_t dim, Where where = Where::current());
// Index ops (as torch.index_select and torch.index_add; indices in [0, size of dim), repeats
// allowed): index_select takes the slices at `indices` along dim, in their order (an embedding
// lookup is index_select(table, 0, ids)); index_add returns base with source's k-th slice added at
// indices[k] (repeated indices add up). Each is the other's gradient.
//   Tensor rows = index_select(x, 0, {2, 0, 2});            // x [4, 3] -> [3, 3]
//   Tensor acc = index_add(zeros({4, 3}), 0, {2, 0, 2}, rows);  // rows 0 and 2 (twice) added back
Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& indices, Where where = Where::current());
Tensor index_add(const Tensor& base, int64_t dim, const std::vector<int64_t>& indices, const Tensor& source,
                 Where where = Where::current());

// Sliding windows over images (torch.nn.functional.unfold and fold, im2col and col2im): the
// building block of convolution and pooling (nn/conv.h). Each is the other's gradient.
//   x [N, C, H, W] -> unfold -> [N, C * kh * kw, L]: column l holds the window at output position
//   l = oh * OW + ow, row (c * kh + i) * kw + j its element (c, oh * sh - ph + i * dh,
//   ow * sw - pw + j * dw), 0 where that falls in the padding;
//   OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1 (floor), OW likewise.
//   fold is the adjoint: [N, C * kh * kw, L] -> [N, C, H, W], each column element added back to
//   the pixel it came from (overlapping windows add up; padding is dropped).
// Sizes: kernel and dilation >= 1, stride >= 1, padding >= 0, at least one window (std::invalid_argument
// naming the op, the shapes and the window otherwise). Batched input only ([N, C, H, W]).
//   Tensor cols = unfold(x, {.kernel = {3, 3}, .padding = {1, 1}});
struct Window2d {
  std::array<int64_t, 2> kernel;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  std::string str() const;  // "kernel [3, 3], stride [1, 1], padding [1, 1], dilation [1, 1]"
  // std::invalid_argument "<op>: kernel, stride and dilation must be >= 1 and padding >= 0, got
  // <str()>" for a window no op takes (the ops below check it; a layer checks it when built).
  void check(const char* op) const;
  // [OH, OW], the windows over an image [h, w] (the formula above); std::invalid_argument for a
  // bad window, an image smaller than the window, or sizes that overflow.
  std::array<int64_t, 2> output_size(int64_t h, int64_t w) const;
};
Tensor unfold(const Tensor& x, const Window2d& window, Where where = Where::current());
Tensor fold(const Tensor& columns, std::array<int64_t, 2> output_size, const Window2d& window,
            Where where = Where::current());
// The maximum of each window, per channel (torch.nn.functional.max_pool2d): x [N, C, H, W] ->
// [N, C, OH, OW], OH as unfold's. The padding counts as -inf (never chosen) and may be at most half
// the kernel (PyTorch's rule). The gradient goes to the window's first maximum, as PyTorch's (a
// tie is not shared, unlike max's rule); a NaN in a window is its maximum.
Tensor max_pool2d(const Tensor& x, const Window2d& window, Where where = Where::current());

// The cross-entropy of each row of logits against a class index (torch's cross_entropy with class
// indices and reduction 'none', as one node): logits [N, C] and N targets in [0, C) -> [N]
// (logits [C] and one target -> []), y_n = log sum_j e^(x_nj) - x_n,t_n, computed with each row's
// maximum subtracted. A NaN in a row makes its loss NaN; a logit of -inf in another class does not.
// std::invalid_argument for other shapes or a count of targets that is not N, std::out_of_range for
// a target outside [0, C), each naming the op, the logits' shape and the value.
Tensor softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& target,
                             Where where = Where::current());

// A user-defined op with its own forward and backward (as torch::autograd::Function): it records,
// composes and differentiates like a built-in one. `forward` runs on the inputs' values without
// recording; `backward(grad, inputs, result)` returns one gradient per input (an undefined Tensor
// where none flows), written with Tensor ops so that create_graph can differentiate it again.
// Check it with gradcheck (autograd/gradcheck.h).
//
//   Tensor y = custom_op("square", {x},
//       [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
//       [](const Tensor& grad, const std::vector<Tensor>& in, const Tensor&) {
//         return std::vector<Tensor>{grad * 2.0 * in[0]};
//       });
using TensorForward = std::function<Tensor(const std::vector<Tensor>& inputs)>;
using TensorBackward =
    std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<Tensor>& inputs, const Tensor& result)>;
Tensor custom_op(std::string_view name, const std::vector<Tensor>& inputs, TensorForward forward,
                 TensorBackward backward, Where where = Where::current());

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

// Functional gradient: d(sum_i <grad_outputs[i], outputs[i]>)/d inputs without touching any .grad.
// grad_outputs may be empty when every output has one element (seeds 1).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, GradOptions options = {});

// Backward and a gradient-descent step in one pass (optim::SGD::backward_and_step is built on it).
// The same as
//   y.backward();
//   for each update u with a gradient: u.param = u.scale * u.param + u.alpha * u.param.grad();
//   then u.param's .grad dropped,
// except that where a parameter's gradient is a matrix product (linear's weight), the product is
// added into the parameter by one gemm and never stored: no gradient buffer to zero, fill and read
// back, which is most of what separates a small-batch training step from its products. The results
// equal the two-step form to rounding (the product's sum is rounded once, into the parameter).
// y must be a one-element tensor (seed 1). Every parameter must be a distinct leaf that requires
// grad (std::invalid_argument otherwise). Nothing is written until the whole sweep has succeeded,
// and every check runs before the first parameter is written: a throw changes no parameter and no
// .grad. Other leaves the sweep reaches get .grad as from backward().
struct ParamUpdate {
  Tensor param;
  double alpha = 0.0;  // e.g. -lr
  double scale = 1.0;  // e.g. 1 - lr * weight_decay; applied only to a parameter that has a gradient
};
void backward_and_update(const Tensor& y, const std::vector<ParamUpdate>& updates);

}  // namespace chainrule
