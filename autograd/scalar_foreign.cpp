// The Scalar tape across threads: generations unique in the process (taken in blocks), the inbox
// through which other threads copy and drop this tape's handles, the registry of inboxes by block,
// and the tape's lifetime (its registration ends with its thread).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "autograd/scalar_tape.h"

namespace chainrule::detail {

namespace {
constexpr unsigned kBlockBits = 16;
uint64_t block_of(uint64_t generation) { return (generation - 1) >> kBlockBits; }
}  // namespace

// Handles copied or dropped on a thread other than their tape's: (generation, record, +1 or -1),
// applied by the owner (ScalarTape::apply_foreign_counts) only while that generation is current.
struct ForeignCount {
  uint64_t generation;
  uint32_t record;
  int32_t delta;
};
struct ForeignInbox {
  std::mutex mutex;
  std::vector<ForeignCount> counts;
  std::size_t compact_at = 1024;     // counts.size() that triggers the next compaction
  std::atomic<bool> pending{false};  // counts wait here
};

namespace {
// Each thread's current block of generations -> its inbox. A handle of an older block is stale
// wherever it is (its generation is over), so a thread registers only its current block. Guarded by
// registry_mutex, which is held while a count goes into an inbox, so that an ending thread cannot
// free its inbox under another's hand. Leaked on purpose: threads may end after static destruction.
std::mutex registry_mutex;
std::unordered_map<uint64_t, ForeignInbox*>& registry() {
  static auto* map = new std::unordered_map<uint64_t, ForeignInbox*>;
  return *map;
}
}  // namespace

void count_foreign(uint64_t generation, uint32_t record, int32_t delta) noexcept {
  // A handle of this tape whose record a compaction moved (the tape is alive while `moved` is set).
  if (tape_state.moved != 0 && ScalarTape::current().count_moved(generation, record, delta)) return;
  const uint64_t block = block_of(generation);
  if (block == block_of(tape_state.generation)) return;  // this thread's own: an older generation
  try {
    const std::lock_guard lock(registry_mutex);
    auto it = registry().find(block);
    if (it == registry().end()) return;  // its thread has ended or moved past that block
    ForeignInbox& inbox = *it->second;
    const std::lock_guard inbox_lock(inbox.mutex);
    // A copy made and dropped here cancels out in place, so that an owner that records nothing
    // (and so never applies its inbox) does not see it grow.
    if (!inbox.counts.empty() && inbox.counts.back().generation == generation &&
        inbox.counts.back().record == record) {
      if ((inbox.counts.back().delta += delta) == 0) inbox.counts.pop_back();
    } else {
      inbox.counts.push_back({generation, record, delta});
    }
    // Handles copied here and dropped in the same order (a vector of them: +a +b -a -b) do not
    // cancel against the last entry: once the inbox has grown to compact_at, the counts of each
    // (generation, record) are summed and those that cancel dropped, so that an owner that
    // records nothing (and so never applies its inbox) holds one entry per record at most. The
    // owner adds the counts up, so their order does not matter.
    if (inbox.counts.size() >= inbox.compact_at) {
      auto& c = inbox.counts;
      std::sort(c.begin(), c.end(), [](const ForeignCount& a, const ForeignCount& b) {
        return a.generation != b.generation ? a.generation < b.generation : a.record < b.record;
      });
      std::size_t kept = 0;
      for (std::size_t i = 0; i < c.size();) {
        ForeignCount sum = c[i];
        for (++i; i < c.size() && c[i].generation == sum.generation && c[i].record == sum.record; ++i)
          sum.delta += c[i].delta;
        if (sum.delta != 0) c[kept++] = sum;
      }
      c.resize(kept);
      inbox.compact_at = std::max<std::size_t>(1024, 2 * kept);
    }
    inbox.pending.store(true, std::memory_order_release);
  } catch (...) {
    // Out of memory or a failing mutex: the owner keeps a count too many (its array is then reused
    // only once its other handles are all gone) or too few (a graph of it may go stale early: a
    // backward through it throws). Nothing reads freed memory either way.
  }
}

std::size_t ScalarTape::foreign_counts() const {
  if (!inbox_) return 0;
  const std::lock_guard lock(inbox_->mutex);
  return inbox_->counts.size();
}

void ScalarTape::apply_foreign_counts() {
  TapeState& t = state_;
  if (!inbox_ || !inbox_->pending.load(std::memory_order_acquire)) return;
  std::vector<ForeignCount> counts;
  {
    const std::lock_guard lock(inbox_->mutex);
    counts.swap(inbox_->counts);
    inbox_->pending.store(false, std::memory_order_relaxed);
  }
  for (const ForeignCount& c : counts) {
    if (c.generation != t.generation && t.moved != 0 && count_moved(c.generation, c.record, c.delta)) continue;
    if (c.generation != t.generation || c.record >= t.size) continue;  // a graph already released
    t.records[c.record].handles += static_cast<uint32_t>(c.delta);  // mod 2^32: a -1 subtracts
    if (c.delta > 0) dead_below_ = std::min(dead_below_, c.record);    // (see graph_alive)
  }
}

// Generations are unique in the process, not only on one thread, so that a handle used on a thread
// other than the one that recorded it can never name a record of that thread's tape (it is stale
// there: its value is usable, a backward through it throws). Each thread takes blocks of 2^16 from
// one atomic counter; 64 bits do not wrap.
uint64_t ScalarTape::next_generation() {
  constexpr uint64_t kBlock = uint64_t{1} << kBlockBits;
  static std::atomic<uint64_t> blocks{0};
  if (generation_next_ == generation_end_) {
    const uint64_t block = blocks.fetch_add(1, std::memory_order_relaxed);
    {
      const std::lock_guard lock(registry_mutex);
      if (!inbox_) inbox_ = std::make_unique<ForeignInbox>();
      if (generation_end_ != 0) {
        // The block ends. Handles of it that a compaction moved may still be copied or dropped on
        // other threads: it stays registered until moves_ names none of its generations (the
        // callers run release_blocks after this).
        const uint64_t old = block_of(generation_next_ - 1);
        try {
          retained_blocks_.push_back(old);
        } catch (...) {
          registry().erase(old);
        }
      }
      registry()[block] = inbox_.get();
    }
    generation_next_ = block * kBlock + 1;  // never 0
    generation_end_ = generation_next_ + kBlock - 1;
  }
  return generation_next_++;
}

// Ended blocks of generations stay registered while a moved handle of theirs may still report a
// copy or a drop from another thread; once moves_ names none of them, they go.
// (No allocation: reset runs it, also from the tape's destructor. A failing lock keeps the blocks
// registered, which costs nothing but their entries.)
void ScalarTape::release_blocks() noexcept {
  if (retained_blocks_.empty()) return;
  auto unused = [this](uint64_t block) {
    return std::none_of(moves_.begin(), moves_.end(), [block](const auto& m) { return block_of(m.first.generation) == block; });
  };
  if (std::none_of(retained_blocks_.begin(), retained_blocks_.end(), unused)) return;
  try {
    const std::lock_guard lock(registry_mutex);
    for (uint64_t block : retained_blocks_)
      if (unused(block)) registry().erase(block);
  } catch (...) {
    return;
  }
  retained_blocks_.erase(std::remove_if(retained_blocks_.begin(), retained_blocks_.end(), unused), retained_blocks_.end());
}

ScalarTape::ScalarTape() = default;

ScalarTape::~ScalarTape() {
  reset();  // first: a reset may take (and register) a new block of generations
  if (inbox_) {
    const std::lock_guard lock(registry_mutex);
    registry().erase(block_of(generation_next_ - 1));
    for (uint64_t block : retained_blocks_) registry().erase(block);
    retained_blocks_.clear();
  }
  auto drop = [](auto*& data, uint32_t& capacity) {
    std::free(data);
    data = nullptr;
    capacity = 0;
  };
  drop(state_.records, state_.capacity);
  drop(state_.leaves, state_.leaf_capacity);
  drop(state_.constants, state_.constant_capacity);
  drop(state_.lists, state_.list_capacity);
  rearm();
}

}  // namespace chainrule::detail
