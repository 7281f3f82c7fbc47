// Tensor handles: storage, element access and printing (creation: autograd/tensor_create.cpp).
#include "autograd/tensor.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <type_traits>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"

namespace chainrule {

using detail::Storage;
using detail::TensorImpl;

const char* dtype_name(DType d) { return d == DType::float32 ? "float32" : "float64"; }

namespace detail {

namespace {
// A storage of its own: header and bytes share one 64-byte-aligned pool block when the bytes are
// few, else the bytes have a block of their own.
constexpr size_t kHeader = 64;
static_assert(sizeof(Storage) <= kHeader);
static_assert(std::is_trivially_destructible_v<Storage>);  // destroy() and TensorImpl::destroy skip ~Storage
constexpr int64_t kInlineBytes = static_cast<int64_t>(kPoolMaxBytes - kHeader);

// The last of a small tensor's two objects frees their block.
void release_block(Storage* s) {
  if (--s->block_users != 0) return;
  // A block's bytes are at most kBlockMaxBytes (detail::empty): said here, the pool's free needs
  // no test for a big block or for 0 bytes.
  const auto bytes = static_cast<size_t>(s->bytes);
  assert(bytes <= static_cast<size_t>(kBlockMaxBytes));
  if (bytes > static_cast<size_t>(kBlockMaxBytes)) __builtin_unreachable();
  pool_free(reinterpret_cast<char*>(s) - kBlockStorage, kBlockData + bytes);
}
}  // namespace

Ref<Storage> Storage::allocate(int64_t bytes) {
  if (bytes <= kInlineBytes) {
    void* block = pool_allocate(kHeader + static_cast<size_t>(bytes));
    auto* s = new (block) Storage;
    s->bytes = bytes;
    s->data = static_cast<char*>(block) + kHeader;
    return Ref<Storage>(s);
  }
  void* block = pool_allocate(kHeader);
  auto* s = new (block) Storage;
  s->bytes = bytes;
  try {
    s->data = pool_allocate(static_cast<size_t>(bytes));  // 64-byte aligned
  } catch (...) {
    pool_free(block, kHeader);
    throw;
  }
  return Ref<Storage>(s);
}

void Storage::destroy(Storage* s) {
  if (s->block_users) return release_block(s);
  const int64_t bytes = s->bytes;
  if (bytes > kInlineBytes) pool_free(s->data, static_cast<size_t>(bytes));
  s->~Storage();
  pool_free(s, bytes <= kInlineBytes ? kHeader + static_cast<size_t>(bytes) : kHeader);
}

void TensorImpl::destroy(TensorImpl* t) {
  if (!t->in_block) {
    delete t;
    return;
  }
  // The block outlives the header while its storage is still held (by a saved output, an alias).
  Storage* home = reinterpret_cast<Storage*>(reinterpret_cast<char*>(t) + kBlockStorage);
  if (t->storage.get() == home && home->refs == 1) {
    // The common end of a temporary: nothing else holds its storage, which goes with the header
    // here, without the call to Storage::destroy (Storage is trivially destructible).
    t->storage.release_raw();
    home->refs = 0;
    --home->block_users;  // the storage's share; the header's goes below
  }
  t->~TensorImpl();
  release_block(home);
}

namespace {
// An allocation that failed, still a std::bad_alloc for those who catch one, with a message that
// says which tensor could not be made.
class TensorAllocationError : public std::bad_alloc {
 public:
  explicit TensorAllocationError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};
}  // namespace

Tensor empty_large(const Shape& shape, DType dtype) {
  Ref<TensorImpl> impl(new TensorImpl(dtype, shape, shape.numel()));
  // The count fits in int64 (Shape's invariant); its bytes may not.
  int64_t bytes = 0;
  if (__builtin_mul_overflow(impl->numel, dtype_size(dtype), &bytes))
    throw std::invalid_argument(fmt::format("a {} tensor of shape {} ({} elements) needs more than 2^63 - 1 bytes",
                                            dtype_name(dtype), shape.str(), impl->numel));
  try {
    impl->storage = Storage::allocate(bytes);
  } catch (const std::bad_alloc&) {
    throw TensorAllocationError(fmt::format("out of memory: cannot allocate {} bytes for a {} tensor of shape {}",
                                            bytes, dtype_name(dtype), shape.str()));
  }
  return Tensor(std::move(impl));
}

Tensor alias_detached(const Tensor& t) {
  Ref<TensorImpl> impl(new TensorImpl(t.dtype(), t.shape(), t.numel()));
  impl->storage = t.impl()->storage;
  impl->wrapped_number = t.impl()->wrapped_number;
  return Tensor(std::move(impl));
}

DType result_dtype(const Tensor& a, const Tensor& b, const char* op) {
  const TensorImpl* x = a.impl();
  const TensorImpl* y = b.impl();
  if (x->dtype == y->dtype) return x->dtype;
  if (x->wrapped_number && !y->wrapped_number) return y->dtype;
  if (y->wrapped_number && !x->wrapped_number) return x->dtype;
  throw std::invalid_argument(fmt::format(
      "{}: dtype mismatch: {} {} and {} {}; convert one side with .to(DType::...) first", op,
      dtype_name(x->dtype), x->shape.str(), dtype_name(y->dtype), y->shape.str()));
}

}  // namespace detail

namespace {

TensorImpl& checked(const Ref<TensorImpl>& impl, const char* what) {
  if (!impl) throw std::logic_error(fmt::format("Tensor::{}: the tensor is undefined", what));
  return *impl;
}

int64_t flat_index(const TensorImpl& t, std::initializer_list<int64_t> index, const char* op) {
  if (static_cast<int>(index.size()) != t.shape.size())
    throw std::out_of_range(fmt::format("{}: {} indices given for a tensor of shape {}", op, index.size(),
                                        t.shape.str()));
  int64_t flat = 0, d = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= t.shape[d])
      throw std::out_of_range(fmt::format("{}: index {} is out of range for dim {} of shape {}", op, i, d,
                                          t.shape.str()));
    flat = flat * t.shape[d] + i;
    ++d;
  }
  return flat;
}

}  // namespace

Tensor::Tensor(double number) : Tensor(detail::empty(Shape{}, DType::float64)) {
  *impl_->data<double>() = number;
  impl_->wrapped_number = true;
}


DType Tensor::dtype() const { return checked(impl_, "dtype").dtype; }
const Shape& Tensor::shape() const { return checked(impl_, "shape").shape; }
int64_t Tensor::numel() const { return checked(impl_, "numel").numel; }
int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "Tensor::size")]; }
uint32_t Tensor::version() const { return checked(impl_, "version").storage->version; }

template <class T>
const T* Tensor::data() const {
  const TensorImpl& t = checked(impl_, "data");
  constexpr DType want = std::is_same_v<T, float> ? DType::float32 : DType::float64;
  if (t.dtype != want)
    throw std::invalid_argument(fmt::format("Tensor::data: the tensor is {}, not {}", dtype_name(t.dtype),
                                            dtype_name(want)));
  return t.data<T>();
}
template <class T>
T* Tensor::mutable_data() {
  T* p = const_cast<T*>(data<T>());
  ++impl_->storage->version;
  return p;
}
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template float* Tensor::mutable_data<float>();
template double* Tensor::mutable_data<double>();

double Tensor::item() const {
  const TensorImpl& t = checked(impl_, "item");
  if (t.numel != 1)
    throw std::invalid_argument(fmt::format("Tensor::item: the tensor has {} elements (shape {}), not 1",
                                            t.numel, t.shape.str()));
  return t.dtype == DType::float32 ? t.data<float>()[0] : t.data<double>()[0];
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  const TensorImpl& t = checked(impl_, "at");
  const int64_t i = flat_index(t, index, "Tensor::at");
  return t.dtype == DType::float32 ? t.data<float>()[i] : t.data<double>()[i];
}

void Tensor::set(std::initializer_list<int64_t> index, double value) {
  TensorImpl& t = checked(impl_, "set");
  const int64_t i = flat_index(t, index, "Tensor::set");
  if (t.requires_grad && !t.grad_fn && GradMode::enabled())
    throw std::logic_error(fmt::format(
        "Tensor::set: a leaf tensor that requires grad (shape {}) cannot be changed in place while "
        "recording; wrap the change in NoGradGuard",
        t.shape.str()));
  // An op's result: the write is not recorded, so the graph would still say the element depends on
  // the op's inputs, and their gradients would be silently wrong.
  if (t.requires_grad && t.grad_fn && GradMode::enabled())
    throw std::logic_error(fmt::format(
        "Tensor::set: the tensor (shape {}) is the result of a recorded op ('{}'); setting an element is not "
        "recorded, so gradients through it would be wrong. Build the new value with ops (a mask, concat), "
        "or write it under NoGradGuard (the graph then keeps the old dependence, as PyTorch under no_grad)",
        t.shape.str(), t.grad_fn->name));
  if (t.dtype == DType::float32) t.data<float>()[i] = static_cast<float>(value);
  else t.data<double>()[i] = value;
  ++t.storage->version;
}

std::vector<double> Tensor::to_vector() const {
  const TensorImpl& t = checked(impl_, "to_vector");
  std::vector<double> out(t.numel);
  detail::dispatch(t.dtype, [&]<class T>() {
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel; ++i) out[i] = p[i];
  });
  return out;
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
bool Tensor::is_leaf() const { return !checked(impl_, "is_leaf").grad_fn; }

Tensor& Tensor::set_requires_grad(bool on) {
  std::as_const(*this).set_requires_grad(on);
  return *this;
}

const Tensor& Tensor::set_requires_grad(bool on) const {
  TensorImpl& t = checked(impl_, "set_requires_grad");
  if (t.grad_fn)
    throw std::logic_error(fmt::format(
        "Tensor::set_requires_grad: only leaves can change requires_grad; this tensor is the result of "
        "'{}' (use detach() to get a leaf)",
        t.grad_fn->name));
  t.requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const TensorImpl& t = checked(impl_, "grad");
  return t.grad ? Tensor(t.grad) : Tensor();
}

void Tensor::zero_grad() const { checked(impl_, "zero_grad").grad.reset(); }

std::string Tensor::grad_fn_name() const {
  const TensorImpl& t = checked(impl_, "grad_fn_name");
  return t.grad_fn ? std::string(t.grad_fn->name) : std::string();
}

Tensor Tensor::detach() const {
  checked(impl_, "detach");
  Tensor out = detail::empty(shape(), dtype());
  std::memcpy(out.impl()->storage->data, impl_->storage->data, static_cast<size_t>(numel() * dtype_size(dtype())));
  // A plain number stays one (it adopts the other operand's dtype): gradcheck's replays of an op
  // on `x * 2.0` in float32 hold detached copies of their inputs, the 2.0 among them.
  out.impl()->wrapped_number = impl_->wrapped_number;
  return out;
}

Tensor Tensor::clone(Where where) const {
  // 1 * x: a differentiable copy whose rule is mul's (no separate op needed), recorded at the
  // caller's line (anomaly mode and traces name it there, not here).
  Tensor one = detail::empty(Shape{}, dtype());
  detail::dispatch(dtype(), [&]<class T>() { *one.impl()->data<T>() = T(1); });
  return *this * Located<Tensor>(one, where);
}

// ---- printing ----

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "Tensor(undefined)";
  // Only the elements shown are read: printing a large tensor copies none of the rest.
  const int64_t numel = t.numel(), shown = std::min<int64_t>(numel, 64);
  const auto value = [&](int64_t i) {
    return detail::dispatch(t.dtype(), [&]<class T>() { return static_cast<double>(t.impl()->data<T>()[i]); });
  };
  std::string body;
  const Shape& s = t.shape();
  if (s.size() == 0) {
    body = fmt::format("{:.6g}", value(0));
  } else {
    const int64_t row = s[s.size() - 1];
    for (int64_t i = 0; i < shown; ++i) {
      if (row > 0 && i % row == 0) body += i == 0 ? "[" : "], [";
      else body += ", ";
      body += fmt::format("{:.6g}", value(i));
    }
    body += shown == 0 ? "[]" : shown < numel ? ", ...]" : "]";  // empty: []
  }
  std::string extra = t.grad_fn_name().empty() ? (t.requires_grad() ? ", requires_grad" : "")
                                                : fmt::format(", grad_fn={}", t.grad_fn_name());
  return fmt::format("Tensor({}, shape={}, dtype={}{})", body, s.str(), dtype_name(t.dtype()), extra);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace chainrule
