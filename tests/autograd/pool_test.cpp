// The pool's big blocks (autograd/pool.cpp): a freed block waits in its thread's bounded cache and
// is reused for the same size; a block freed on another thread joins that thread's cache; a thread's
// cache goes back to the system when the thread ends (the sanitizer build checks for leaks).
// Each case runs on a fresh thread, so it starts with an empty cache.
#include <cstring>
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
  on_fresh_thread([] {
    void* a = pool_allocate(kBig);
    std::memset(a, 1, kBig);
    pool_free(a, kBig);
    void* b = pool_allocate(kBig + 1000);  // another size: a fresh block
    CHECK(b != a);
    void* c = pool_allocate(kBig);
    CHECK(c == a);
    pool_free(b, kBig + 1000);
    pool_free(c, kBig);
  });
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
  on_fresh_thread([&] { a = pool_allocate(kBig); });
  on_fresh_thread([&] {
    pool_free(a, kBig);
    void* b = pool_allocate(kBig);
    CHECK(b == a);
    pool_free(b, kBig);
  });
}

TEST_CASE("pool: big tensors made on one thread and dropped on another keep their values", "[autograd][pool]") {
  std::vector<Tensor> made;
  on_fresh_thread([&] {
    for (int i = 0; i < 4; ++i) made.push_back(full({256, 784}, i, DType::float32));
  });
  on_fresh_thread([&] {
    for (int i = 0; i < 4; ++i) CHECK(made[i].at({255, 783}) == i);
    made.clear();
    const Tensor t = full({256, 784}, 7.0, DType::float32);  // from the blocks just freed
    CHECK(t.at({0, 0}) == 7.0);
    CHECK(t.at({255, 783}) == 7.0);
  });
}
