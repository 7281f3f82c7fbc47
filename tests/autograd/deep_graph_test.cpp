// Deep graphs and long loops: backward and destruction are never recursive (a chain of a million
// nodes works on an 8 MiB stack), and a training-style loop holds flat memory.
//
// The deep chains run on a thread whose stack is exactly 8 MiB (the default main-thread stack on
// Linux), so the check does not depend on the `ulimit -s` of whoever runs the suite. Under
// AddressSanitizer the chains are shortened (each op costs ~10x more there) and the resident-memory
// check is skipped (ASan's quarantine holds freed memory on purpose).
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <span>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

using namespace chainrule;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// A million in normal builds; under ASan 200,000, still far beyond any recursion's reach (a
// recursive walk overflows 8 MiB after some tens of thousands of frames).
constexpr int kChain = kSanitized ? 200'000 : 1'000'000;

constexpr std::size_t kStack = 8u << 20;

// Runs f on a new thread with an 8 MiB stack and rethrows what it threw. Assertions stay on the
// calling thread (Catch2 v2 is not thread-safe): f only computes.
void run_on_8mib_stack(const std::function<void()>& f) {
  struct Job {
    const std::function<void()>* f;
    std::exception_ptr error;
  } job{&f, nullptr};
  pthread_attr_t attr;
  REQUIRE(pthread_attr_init(&attr) == 0);
  REQUIRE(pthread_attr_setstacksize(&attr, kStack) == 0);
  pthread_t thread;
  const int rc = pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        auto* j = static_cast<Job*>(p);
        try {
          (*j->f)();
        } catch (...) {
          j->error = std::current_exception();
        }
        return nullptr;
      },
      &job);
  pthread_attr_destroy(&attr);
  REQUIRE(rc == 0);
  REQUIRE(pthread_join(thread, nullptr) == 0);
  if (job.error) std::rethrow_exception(job.error);
}

// Resident set size in bytes, from /proc/self/statm.
long resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  const int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  return n == 2 ? pages_resident * sysconf(_SC_PAGESIZE) : -1;
}

}  // namespace

TEST_CASE("deep graphs: backward through a chain of a million Scalar nodes", "[autograd][deep]") {
  double value = 0, x_grad = 0, mid_grad = 0;
  run_on_8mib_stack([&] {
    Scalar x = Scalar::leaf(0.5);
    Scalar y = x;
    Scalar mid;
    for (int i = 0; i < kChain; ++i) {
      y = y + x;  // one record each: x's leaf record is cached
      if (i == kChain / 2) mid = y;
    }
    y.backward();
    value = y.value();
    x_grad = x.grad();
    mid_grad = mid.grad();
  });  // and the graph is dropped on that stack too
  CHECK(value == 0.5 * (kChain + 1));
  CHECK(x_grad == kChain + 1.0);
  CHECK(mid_grad == 1.0);
}

TEST_CASE("deep graphs: a million-node Scalar chain dropped without backward", "[autograd][deep]") {
  std::size_t records_before = 0, live_after = 0, records_next = 0;
  run_on_8mib_stack([&] {
    {
      Scalar x = Scalar::leaf(0.25);
      Scalar y = x;
      for (int i = 0; i < kChain; ++i) y = -y;  // interior nodes only
      records_before = detail::scalar_tape_stats().records;
    }
    live_after = detail::scalar_tape_stats().live_records;
    const Scalar z = Scalar::leaf(2.0) * 3.0;  // the next op reuses the array (past its half mark)
    records_next = detail::scalar_tape_stats().records;
  });
  CHECK(records_before >= static_cast<std::size_t>(kChain));
  CHECK(live_after == 0);  // nothing alive: the tape is unused
  CHECK(records_next == 2);  // z's Leaf record and its own
}

TEST_CASE("deep graphs: backward through a chain of a million tensor ops", "[autograd][deep]") {
  double value = 0, x_grad = 0;
  bool first_freed_error = false;
  run_on_8mib_stack([&] {
    Tensor x = tensor({0.5}, TensorOptions(DType::float64).requires_grad());
    Tensor y = x;
    for (int i = 0; i < kChain; ++i) y = y + x;
    y.backward();
    value = y.item();
    x_grad = x.grad().item();
    // A second backward through the freed million-node graph is an error, not a crash.
    try {
      y.backward();
    } catch (const std::logic_error&) {
      first_freed_error = true;
    }
  });
  CHECK(value == 0.5 * (kChain + 1));
  CHECK(x_grad == kChain + 1.0);
  CHECK(first_freed_error);
}

TEST_CASE("deep graphs: a million-op tensor chain dropped without backward", "[autograd][deep]") {
  bool done = false;
  run_on_8mib_stack([&] {
    {
      Tensor x = tensor({0.25}, TensorOptions(DType::float64).requires_grad());
      Tensor y = x;
      for (int i = 0; i < kChain; ++i) y = tanh(y);
    }  // every node released here: the deferred destruction loop, not a million nested destructors
    done = true;
  });
  CHECK(done);
}

TEST_CASE("deep graphs: a retained million-node graph swept twice, then dropped", "[autograd][deep]") {
  double first = 0, second = 0;
  const int n = kChain / 2;
  run_on_8mib_stack([&] {
    Scalar x = Scalar::leaf(1.0);
    Scalar y = x;
    for (int i = 0; i < n; ++i) y = y + x;
    y.backward({.retain_graph = true});
    first = x.grad();
    y.backward();
    second = x.grad();
  });
  CHECK(first == n + 1.0);
  CHECK(second == 2.0 * (n + 1));
}

// ---- flat memory ----

namespace {

// The lecture's 2-3-1 network on one observation, as Scalars: 13 records or so per leaf use.
Scalar lecture_cost(const std::vector<Scalar>& w, double x1, double x2, double y) {
  Scalar out = w[12];
  for (int j = 0; j < 3; ++j) {
    const Scalar h = sigmoid(x1 * w[j] + x2 * w[3 + j] + w[6 + j]);
    out = out + h * w[9 + j];
  }
  const Scalar diff = sigmoid(out) - y;
  return 0.5 * diff * diff;
}

std::vector<Scalar> lecture_weights() {
  const double init[13] = {-0.2, 0.4, -1.0, -0.4, -0.7, -0.8, 0.1, -0.2, 0.4, -0.6, -0.6, -0.3, -0.6};
  std::vector<Scalar> w;
  for (double v : init) w.push_back(Scalar::leaf(v));
  return w;
}

void sgd_step(std::vector<Scalar>& w, double lr) {
  for (Scalar& p : w) {
    p.set_value(p.value() - lr * p.grad());
    p.zero_grad();
  }
}

}  // namespace

TEST_CASE("flat memory: a Scalar training loop reuses the tape", "[autograd][memory]") {
  constexpr int kIterations = 100'000;
  constexpr int kWarmUp = 10;
  std::vector<Scalar> w = lecture_weights();

  SECTION("handles dropped every iteration") {
    detail::ScalarTapeStats warm{};
    std::size_t graph_records = 0, max_records = 0, max_live = 0, max_capacity = 0;
    for (int i = 0; i < kIterations; ++i) {
      {
        Scalar cost = lecture_cost(w, -0.97, -0.80, 0.0);
        if (i == kWarmUp) graph_records = detail::scalar_tape_stats().records;
        cost.backward();
      }
      sgd_step(w, 0.5);
      const detail::ScalarTapeStats s = detail::scalar_tape_stats();
      if (i == kWarmUp) warm = s;
      if (i > kWarmUp) {
        max_records = std::max(max_records, s.records);
        max_live = std::max(max_live, s.live_records);
        max_capacity = std::max(max_capacity, s.capacity);
      }
    }
    // Nothing alive after each iteration, and each graph starts on the reused array: the tape
    // never holds more than one iteration's graph.
    CHECK(graph_records > 0);
    CHECK(warm.records == graph_records);
    CHECK(max_records == graph_records);
    CHECK(max_live == 0);
    CHECK(max_capacity <= warm.capacity);
  }

  SECTION("`Scalar loss;` outside the loop, reassigned every iteration") {
    Scalar loss;
    detail::ScalarTapeStats warm{};
    std::size_t max_records = 0, max_capacity = 0;
    for (int i = 0; i < kIterations; ++i) {
      loss = lecture_cost(w, -0.97, -0.80, 0.0);
      loss.backward();
      sgd_step(w, 0.5);
      const detail::ScalarTapeStats s = detail::scalar_tape_stats();
      if (i == kWarmUp) warm = s;
      if (i > kWarmUp) {
        max_records = std::max(max_records, s.records);
        max_capacity = std::max(max_capacity, s.capacity);
      }
    }
    CHECK(warm.records > 0);  // the last graph stays (loss names it) until the next one starts
    CHECK(max_records <= warm.records);
    CHECK(max_capacity <= warm.capacity);
    CHECK(loss.value() < 0.01);  // and it trained
  }

  SECTION("several observations accumulated, one update per epoch, the cost kept outside") {
    const double xs[3][3] = {{-0.97, -0.80, 0}, {-0.69, -0.97, 0}, {-0.79, -0.52, 1}};
    Scalar cost;
    detail::ScalarTapeStats warm{};
    std::size_t max_records = 0, max_capacity = 0;
    for (int i = 0; i < kIterations / 3; ++i) {
      for (const auto& o : xs) {
        cost = lecture_cost(w, o[0], o[1], o[2]);
        cost.backward();
      }
      sgd_step(w, 0.5);
      const detail::ScalarTapeStats s = detail::scalar_tape_stats();
      if (i == kWarmUp) warm = s;
      if (i > kWarmUp) {
        max_records = std::max(max_records, s.records);
        max_capacity = std::max(max_capacity, s.capacity);
      }
    }
    CHECK(max_records <= warm.records);
    CHECK(max_capacity <= warm.capacity);
  }

  // No handle death and no sweep says when the tape may be reused here: the last handle to an
  // unfreed record dies while `kept` (freed) lives on. The tape finds out at half its capacity,
  // waiting for the moment between two statements when no graph is alive.
  SECTION("a swept graph kept alive while forward-only graphs come and go") {
    Scalar kept = lecture_cost(w, -0.97, -0.80, 0.0);
    kept.backward();
    detail::ScalarTapeStats warm{};
    std::size_t max_capacity = 0;
    double sum = 0.0;
    for (int i = 0; i < kIterations; ++i) {
      sum += lecture_cost(w, -0.69, -0.97, 0.0).value();  // recorded, never swept, dropped
      const detail::ScalarTapeStats s = detail::scalar_tape_stats();
      if (i == kWarmUp) warm = s;
      if (i > kWarmUp) max_capacity = std::max(max_capacity, s.capacity);
    }
    CHECK(sum > 0.0);
    CHECK(max_capacity <= std::max<std::size_t>(warm.capacity, 2048));
    CHECK_THROWS_WITH(kept.backward(), Catch::Contains("second time") || Catch::Contains("released"));
  }
}

// A chain of n interior records above one leaf (plus its Leaf record).
Scalar chain(const Scalar& x, int n) {
  Scalar y = x * 1.0;
  for (int i = 1; i < n; ++i) y = tanh(y);
  return y;
}

// The tape's capacity after each of six steps `step(x).backward()`, on a thread of its own: a fresh
// tape of the first capacity (1,024 records). Also x's gradient, which the steps accumulate.
std::vector<std::size_t> capacities_over_steps(const std::function<Scalar(const Scalar&)>& step, double& x_grad) {
  std::vector<std::size_t> capacity;
  std::thread([&] {
    Scalar x = Scalar::leaf(0.3);
    for (int i = 0; i < 6; ++i) {
      step(x).backward();
      capacity.push_back(detail::scalar_tape_stats().capacity);
    }
    x_grad = x.grad();
  }).join();
  return capacity;
}

TEST_CASE("flat memory: the tape's array for graphs near its size", "[autograd][memory]") {
  double x_grad = 0.0;
  SECTION("swept graphs of 700 records: doubled once, then each step stays below its half mark") {
    const std::vector<std::size_t> capacity = capacities_over_steps([](const Scalar& x) { return chain(x, 700); }, x_grad);
    CHECK(x_grad != 0.0);
    CHECK(capacity.front() == 1024);  // the first graph fit
    for (std::size_t i = 1; i < capacity.size(); ++i) CHECK(capacity[i] == 2048);
  }
  SECTION("the same through the checked sweep (a custom op on top): doubled once, then stable") {
    auto twice = [](std::span<const double> v) { return 2.0 * v[0]; };
    auto d_twice = [](double grad, std::span<const double>, double) { return std::vector<double>{2.0 * grad}; };
    const std::vector<std::size_t> capacity = capacities_over_steps(
        [&](const Scalar& x) { return custom_op("twice", {chain(x, 700)}, twice, d_twice); }, x_grad);
    CHECK(x_grad != 0.0);
    CHECK(capacity.front() == 1024);
    for (std::size_t i = 1; i < capacity.size(); ++i) CHECK(capacity[i] == 2048);
  }
  SECTION("graphs of 1,000 records recorded and dropped without a backward") {
    std::size_t max_capacity = 0, max_records = 0;
    double sum = 0.0;
    std::thread([&] {  // a fresh tape; assertions stay on the test's thread
      Scalar x = Scalar::leaf(0.3);
      for (int i = 0; i < 1000; ++i) {
        sum += chain(x, 1000).value();
        max_capacity = std::max(max_capacity, detail::scalar_tape_stats().capacity);
        max_records = std::max(max_records, detail::scalar_tape_stats().records);
      }
    }).join();
    CHECK(sum > 0.0);
    // Reused between two graphs once past its half mark: never more than two graphs' records.
    CHECK(max_capacity <= 4096);
    CHECK(max_records <= 2 * 1001 + 4);
  }
}

// The array only grew: after one huge graph a thread kept it (32 bytes a record) for its life.
TEST_CASE("flat memory: after a huge graph, small ones give the array back", "[autograd][memory]") {
  std::size_t huge = 0, after = 0;
  double grad = 0.0;
  std::thread([&] {  // a fresh tape
    Scalar x = Scalar::leaf(0.5);
    {
      const Scalar y = chain(x, 300000);
      y.backward();
      huge = detail::scalar_tape_stats().capacity;
    }
    for (int i = 0; i < 200; ++i) chain(x, 700).backward();
    after = detail::scalar_tape_stats().capacity;
    grad = x.grad();
  }).join();
  CHECK(huge >= 300000);
  CHECK(after <= 2048);  // twice the largest recent graph, rounded up to a power of 2
  CHECK(grad != 0.0);
}

TEST_CASE("flat memory: second-order loops with zero_grad reuse the tape", "[autograd][memory]") {
  // backward(create_graph) leaves each leaf a recorded gradient that keeps its graph alive (as in
  // PyTorch); zero_grad() lets it go, and the tape is reused.
  Scalar x = Scalar::leaf(0.5);
  detail::ScalarTapeStats warm{};
  std::size_t max_records = 0, max_capacity = 0;
  for (int i = 0; i < 10'000; ++i) {
    (x * x * sigmoid(x)).backward({.create_graph = true});
    const Scalar g = x.grad_scalar();
    x.zero_grad();
    g.backward();  // the second derivative
    x.set_value(0.5 + 1e-6 * (i % 7));
    x.zero_grad();
    const detail::ScalarTapeStats s = detail::scalar_tape_stats();
    if (i == 10) warm = s;
    if (i > 10) {
      max_records = std::max(max_records, s.records);
      max_capacity = std::max(max_capacity, s.capacity);
    }
  }
  CHECK(max_records <= warm.records);
  CHECK(max_capacity <= warm.capacity);
}

TEST_CASE("flat memory: a Tensor training loop does not grow resident memory", "[autograd][memory]") {
  if (kSanitized) {
    WARN("skipped under AddressSanitizer: its quarantine keeps freed memory resident on purpose");
    return;
  }
  Generator gen(7);
  const TensorOptions leaf = TensorOptions(DType::float64).requires_grad();
  Tensor w1 = uniform({2, 8}, -1, 1, gen, leaf), b1 = zeros({8}, leaf);
  Tensor w2 = uniform({8, 1}, -1, 1, gen, leaf), b2 = zeros({1}, leaf);
  const Tensor x = uniform({16, 2}, -1, 1, gen, DType::float64);
  const Tensor y = uniform({16, 1}, 0, 1, gen, DType::float64);

  auto iteration = [&] {
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor out = sigmoid(matmul(h, w2) + b2);
    Tensor loss = mean(pow(out - y, 2.0));
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor* p : {&w1, &b1, &w2, &b2}) {
      *p -= 0.1 * p->grad();
      p->zero_grad();
    }
    return loss.item();
  };

  for (int i = 0; i < 500; ++i) iteration();
  const long before = resident_bytes();
  REQUIRE(before > 0);
  double last = 0;
  for (int i = 0; i < 10'000; ++i) last = iteration();
  const long after = resident_bytes();
  INFO("resident before " << before << " bytes, after " << after << " bytes");
  CHECK(after - before <= 1L << 20);  // 10,000 leaked graphs would be many megabytes
  CHECK(std::isfinite(last));
}
