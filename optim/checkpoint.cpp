#include "optim/checkpoint.h"

#include <fmt/format.h>

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "nn/serialize.h"

namespace chainrule::optim {

namespace {

constexpr std::string_view kSchedulerPrefix = "scheduler.";

}  // namespace

void save(const Optimizer& optimizer, const std::filesystem::path& path, const Scheduler* scheduler) {
  std::map<std::string, Tensor> tensors = optimizer.state_dict();
  std::map<std::string, std::string> metadata = {{"format", "chainrule"}, {"optimizer", optimizer.name()}};
  if (scheduler) {
    for (const auto& [name, value] : scheduler->state_dict())
      tensors.emplace(std::string(kSchedulerPrefix) + name, full({}, value, DType::float64));
    metadata.emplace("scheduler", scheduler->name());
  }
  nn::save_tensors(tensors, path, metadata);
}

void load(Optimizer& optimizer, const std::filesystem::path& path, Scheduler* scheduler) {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> state = nn::load_tensors(path, &metadata);
  const auto fail = [&](const std::string& what) {
    return std::invalid_argument(fmt::format("optim::load: {}: {}", path.string(), what));
  };
  const auto it = metadata.find("optimizer");
  if (it == metadata.end())
    throw fail("not an optimizer's file (its metadata has no \"optimizer\"; nn::save writes models, optim::save "
               "optimizers)");
  if (it->second != optimizer.name()) throw fail(fmt::format("written by {}, loading into {}", it->second, optimizer.name()));
  // The scheduler's entries, apart from the optimizer's.
  std::map<std::string, double> schedule;
  for (auto e = state.begin(); e != state.end();) {
    if (!e->first.starts_with(kSchedulerPrefix)) {
      ++e;
      continue;
    }
    if (e->second.numel() != 1) throw fail(fmt::format("\"{}\" has shape {}, expected one number", e->first, e->second.shape().str()));
    schedule.emplace(e->first.substr(kSchedulerPrefix.size()), e->second.item());
    e = state.erase(e);
  }
  std::map<std::string, double> before;
  if (scheduler) {
    const auto kind = metadata.find("scheduler");
    if (kind == metadata.end()) throw fail(fmt::format("the file holds no scheduler, loading into {}", scheduler->name()));
    if (kind->second != scheduler->name())
      throw fail(fmt::format("the scheduler was {}, loading into {}", kind->second, scheduler->name()));
    before = scheduler->state_dict();
    try {
      scheduler->load_state_dict(schedule);  // checks everything before it changes anything
    } catch (const std::invalid_argument& e) {
      throw fail(e.what());
    }
  }
  try {
    optimizer.load_state_dict(state);
  } catch (const std::invalid_argument& e) {
    if (scheduler) scheduler->load_state_dict(before);  // all or nothing
    throw fail(e.what());
  } catch (...) {
    if (scheduler) scheduler->load_state_dict(before);
    throw;
  }
}

}  // namespace chainrule::optim
