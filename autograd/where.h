#pragma once
// Where: the source location at which an op was recorded, so that gradcheck and anomaly mode can
// say "the mul recorded at model.cpp:42". Named functions take it as a defaulted last argument;
// operators cannot have default arguments, so their right-hand operand arrives as Located<T>,
// which an operand converts to implicitly while capturing the location of the expression.
//
//   auto y = w * x;            // Located<Scalar> captures this line
//   auto z = exp(y);           // `where` defaults to this line
#include <source_location>

namespace chainrule {

using Where = std::source_location;

template <class T>
class Located {
 public:
  Located(const T& v, Where w = Where::current()) : ref_(&v), where(w) {}                // NOLINT
  Located(double number, Where w = Where::current()) : number_(number), where(w) {}     // NOLINT
  const T& value() const { return ref_ ? *ref_ : number_; }

 private:
  const T* ref_ = nullptr;  // the operand; it outlives this full-expression temporary
  T number_;

 public:
  Where where;
};

}  // namespace chainrule
