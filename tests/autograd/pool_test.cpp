// The pool's big blocks (autograd/pool.cpp): a freed block waits in its thread's bounded cache and
// is reused for the same size; a block freed on another thread joins that thread's cache; a thread's
// cache goes back to the system when the thread ends (the sanitizer build checks for leaks).
// Each case runs on a fresh thread, so it starts with an empty cache; the thread keeps what it saw
// and the test's own thread asserts it (Catch2's assertions are not meant for other threads).
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/pool.h"
#include "autograd/tensor.h"

using namespace chainrule;
using detail::pool_allocate;
using detail::pool_free;

namespace {

template <class F>
void on_fresh_thread(F f) {
  std::thread t(f);
  t.join();
}

constexpr std::size_t kBig = 800 * 1024;  // one 256x784 float32 weight

}  // namespace

TEST_CASE("pool: a freed big block is reused for the same size only", "[autograd][pool]") {
  bool other_size_fresh = false, same_size_reused = false;
  on_fresh_thread([&] {
    void* a = pool_allocate(kBig);
    std::memset(a, 1, kBig);
    pool_free(a, kBig);
    void* b = pool_allocate(kBig + 1000);  // another size: a fresh block
    other_size_fresh = b != a;
    void* c = pool_allocate(kBig);
    same_size_reused = c == a;
    pool_free(b, kBig + 1000);
    pool_free(c, kBig);
  });
  CHECK(other_size_fresh);
  CHECK(same_size_reused);
}

TEST_CASE("pool: freeing more than the cache holds gives blocks back", "[autograd][pool]") {
  on_fresh_thread([] {
    // 48 MiB freed in 1 MiB blocks, more than the cache holds: the oldest go back to the system.
    std::vector<void*> blocks;
    for (int i = 0; i < 48; ++i) blocks.push_back(pool_allocate(std::size_t(1) << 20));
    for (void* p : blocks) pool_free(p, std::size_t(1) << 20);
    // Taking them again returns cached and fresh blocks alike, all usable.
    for (void*& p : blocks) {
      p = pool_allocate(std::size_t(1) << 20);
      std::memset(p, 2, std::size_t(1) << 20);
    }
    for (void* p : blocks) pool_free(p, std::size_t(1) << 20);
    // A block larger than the cache takes is freed at once.
    void* huge = pool_allocate(std::size_t(64) << 20);
    pool_free(huge, std::size_t(64) << 20);
  });
}

TEST_CASE("pool: a big block freed on another thread joins that thread's cache", "[autograd][pool]") {
  void* a = nullptr;
  void* b = nullptr;
  on_fresh_thread([&] { a = pool_allocate(kBig); });
  on_fresh_thread([&] {
    pool_free(a, kBig);
    b = pool_allocate(kBig);
    pool_free(b, kBig);
  });
  CHECK(b == a);
}

TEST_CASE("pool: big tensors made on one thread and dropped on another keep their values", "[autograd][pool]") {
  std::vector<Tensor> made;
  std::vector<double> seen;  // each tensor's last element, read on the second thread
  double first = 0.0, last = 0.0;
  on_fresh_thread([&] {
    for (int i = 0; i < 4; ++i) made.push_back(full({256, 784}, i, DType::float32));
  });
  on_fresh_thread([&] {
    for (int i = 0; i < 4; ++i) seen.push_back(made[i].at({255, 783}));
    made.clear();
    const Tensor t = full({256, 784}, 7.0, DType::float32);  // from the blocks just freed
    first = t.at({0, 0});
    last = t.at({255, 783});
  });
  CHECK(seen == std::vector<double>{0.0, 1.0, 2.0, 3.0});
  CHECK(first == 7.0);
  CHECK(last == 7.0);
}

// Small blocks (size classes up to kPoolMaxBytes) live in per-thread lists. These patterns used to
// cut new slabs forever: the blocks sat in the lists of threads that had ended, or piled up in the
// list of a thread that only frees. Now a thread's lists are bounded and handed on when it ends.

namespace {
// Slabs cut by 20 more runs of `round` after a first one (which may cut what it needs).
template <class F>
std::size_t slabs_cut_by_repeats(F round) {
  round();
  const std::size_t slabs = detail::pool_slabs();
  for (int r = 0; r < 20; ++r) round();
  return detail::pool_slabs() - slabs;
}
}  // namespace

TEST_CASE("pool: small blocks of ended threads are reused by later threads", "[autograd][pool]") {
  constexpr int kBlocks = 3000;  // 12 slabs' worth
  CHECK(slabs_cut_by_repeats([] {
          on_fresh_thread([] {
            std::vector<void*> blocks;
            for (int i = 0; i < kBlocks; ++i) blocks.push_back(detail::pool_allocate_out_of_line(48));
            for (void* p : blocks) detail::pool_free_out_of_line(p, 48);
          });
        }) == 0);
}

TEST_CASE("pool: small blocks freed on a thread that never allocates are reused once it ends",
          "[autograd][pool]") {
  constexpr int kBlocks = 3000;
  CHECK(slabs_cut_by_repeats([] {
          std::vector<void*> blocks;
          on_fresh_thread([&] {
            for (int i = 0; i < kBlocks; ++i) blocks.push_back(detail::pool_allocate_out_of_line(200));
          });
          std::thread consumer([&] {
            for (void* p : blocks) detail::pool_free_out_of_line(p, 200);
          });
          consumer.join();
        }) == 0);
}

TEST_CASE("pool: a producer and a consumer thread running side by side keep the slab count bounded",
          "[autograd][pool]") {
  // The consumer only frees, the producer only allocates, both for the whole run: without a bound
  // on the consumer's list, every block the producer takes is new.
  constexpr int kRounds = 12, kBlocks = 20000;
  std::vector<std::vector<void*>> batches(kRounds);
  std::mutex m;
  std::condition_variable changed;
  int produced = 0, consumed = 0;
  const std::size_t slabs_before = detail::pool_slabs();
  std::thread producer([&] {
    for (int r = 0; r < kRounds; ++r) {
      {
        // At most two batches alive: the one being freed and this one.
        std::unique_lock<std::mutex> lock(m);
        changed.wait(lock, [&] { return consumed >= r - 1; });
      }
      std::vector<void*> batch;
      for (int i = 0; i < kBlocks; ++i) batch.push_back(detail::pool_allocate_out_of_line(100));
      std::lock_guard<std::mutex> lock(m);
      batches[r] = std::move(batch);
      ++produced;
      changed.notify_all();
    }
  });
  std::thread consumer([&] {
    for (int r = 0; r < kRounds; ++r) {
      std::vector<void*> batch;
      {
        std::unique_lock<std::mutex> lock(m);
        changed.wait(lock, [&] { return produced > r; });
        batch = std::move(batches[r]);
      }
      for (void* p : batch) detail::pool_free_out_of_line(p, 100);
      std::lock_guard<std::mutex> lock(m);
      ++consumed;
      changed.notify_all();
    }
  });
  producer.join();
  consumer.join();
  // A batch of 20,000 128-byte blocks is 157 slabs. Two batches alive, the consumer's list (up to
  // 1 MiB of blocks, 64 slabs) and blocks in transit stay under three batches' worth; unbounded,
  // the twelve rounds cut ~1,880.
  CHECK(detail::pool_slabs() - slabs_before <= 3 * 157);
}
