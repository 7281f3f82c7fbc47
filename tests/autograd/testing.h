#pragma once
// Helpers shared by the tests: central differences, tolerances, exception messages, deterministic
// inputs and temporary directories. Header-only; each test file includes it.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <typeinfo>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"

namespace chainrule::testing {

// The step of every central difference in float64 (truncation error ~eps^2, rounding ~1e-16/eps).
inline constexpr double kEps = 1e-6;

// |analytic - numeric| <= atol + rtol * |numeric|, the criterion (loosest: 1e-5 and 1e-3);
// the tests pass tighter bounds where they hold.
inline bool close(double analytic, double numeric, double atol = 1e-5, double rtol = 1e-3) {
  return std::abs(analytic - numeric) <= atol + rtol * std::abs(numeric);
}

// d f / dx at x by central differences.
inline double central_difference(const std::function<double(double)>& f, double x, double eps = kEps) {
  return (f(x + eps) - f(x - eps)) / (2 * eps);
}

// Rounds to `digits` decimals, for comparing with the lecture's slides ("0.65", "-0.608").
inline double round_to(double x, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(x * scale) / scale;
}

// Runs f, expects it to throw E (exactly that type or derived), and returns the message. Any other
// outcome fails the test case with the reason.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected " << typeid(E).name() << ", got another exception: " << e.what());
  }
  FAIL("expected " << typeid(E).name() << ", but nothing was thrown");
  return {};
}

// Deterministic pseudo-random numbers for test inputs (a fixed LCG: the same on every platform).
class Numbers {
 public:
  explicit Numbers(uint64_t seed) : state_(seed * 2862933555777941757ULL + 3037000493ULL) {}
  double uniform(double low, double high) {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return low + (high - low) * static_cast<double>(state_ >> 11) * 0x1.0p-53;
  }
  // A uniform index in [0, n), for n >= 1.
  int64_t index(int64_t n) {
    return std::min<int64_t>(n - 1, static_cast<int64_t>(uniform(0, static_cast<double>(n))));
  }
  // Uniform in [low, high] but at least `gap` away from 0 (for kinks: relu, abs, sign).
  double away_from_zero(double low, double high, double gap) {
    for (;;) {
      const double v = uniform(low, high);
      if (std::abs(v) >= gap) return v;
    }
  }
  std::vector<double> uniform_vector(std::size_t n, double low, double high) {
    std::vector<double> v(n);
    for (double& x : v) x = uniform(low, high);
    return v;
  }

 private:
  uint64_t state_;
};

// Dot product of two tensors' values (any dtype), in double.
inline double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

// Checks d/dx sum(f(xs) * w), for inputs of the given shapes and weights w drawn from Generator(seed),
// against central differences with step h on every element of every input (float64). The inputs of
// the perturbed evaluations require grad too, so that f may itself call grad(..., create_graph).
inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            const std::vector<Shape>& shapes, uint64_t seed = 11, double h = 1e-6) {
  const TensorOptions f64(DType::float64);
  using Values = std::vector<double>;
  Generator gen(seed);
  std::vector<Tensor> xs;
  for (const Shape& s : shapes) xs.push_back(uniform(s, -1, 1, gen, TensorOptions(f64).requires_grad()));
  const Tensor y = f(xs);
  const Tensor w = uniform(y.shape(), -1, 1, gen, f64);
  sum(y * w).backward();
  const auto loss = [&](size_t i, const Values& values) {
    std::vector<Tensor> in;
    for (const Tensor& x : xs)
      in.push_back(from_vector(x.to_vector(), x.shape(), TensorOptions(f64).requires_grad()));
    in[i] = from_vector(values, xs[i].shape(), TensorOptions(f64).requires_grad());
    return sum(f(in) * w).item();
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    INFO("input " << i << " of shape " << xs[i].shape().str());
    const Tensor g = xs[i].grad();
    REQUIRE(g.defined());
    REQUIRE(g.shape() == xs[i].shape());
    CHECK(g.dtype() == DType::float64);
    const Values x = xs[i].to_vector(), analytic = g.to_vector();
    for (size_t j = 0; j < x.size(); ++j) {
      Values v = x;
      v[j] = x[j] + h;
      const double plus = loss(i, v);
      v[j] = x[j] - h;
      const double numeric = (plus - loss(i, v)) / (2 * h);
      INFO("element " << j << ": analytic " << analytic[j] << ", numeric " << numeric);
      CHECK(std::abs(analytic[j] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
    }
  }
}

// A fresh directory under the system temp dir (unique per process and object), removed with what
// it holds on scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("chainrule_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Writes `content` byte for byte to `name` in this directory; returns its path.
  std::filesystem::path write(const std::string& name, const std::string& content) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }
  // The names of the files in it, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

// gradcheck and gradgradcheck of f at `inputs`, each report shown when its check fails.
inline void check_first_and_second_order(const TensorFunction& f, const std::vector<Tensor>& inputs) {
  const GradcheckReport first = gradcheck(f, inputs);
  INFO(first);
  CHECK(first.passed);
  const GradcheckReport second = gradgradcheck(f, inputs);
  INFO(second);
  CHECK(second.passed);
}

}  // namespace chainrule::testing
