#include "optim/checkpoint.h"

#include <fmt/format.h>

#include <map>
#include <stdexcept>
#include <string>

#include "nn/serialize.h"

namespace chainrule::optim {

void save(const Optimizer& optimizer, const std::filesystem::path& path) {
  nn::save_tensors(optimizer.state_dict(), path, {{"format", "chainrule"}, {"optimizer", optimizer.name()}});
}

void load(Optimizer& optimizer, const std::filesystem::path& path) {
  std::map<std::string, std::string> metadata;
  const std::map<std::string, Tensor> state = nn::load_tensors(path, &metadata);
  const auto it = metadata.find("optimizer");
  if (it == metadata.end())
    throw std::invalid_argument(fmt::format("optim::load: {}: not an optimizer's file (its metadata has no "
                                            "\"optimizer\"; nn::save writes models, optim::save optimizers)",
                                            path.string()));
  if (it->second != optimizer.name())
    throw std::invalid_argument(fmt::format("optim::load: {}: written by {}, loading into {}", path.string(),
                                            it->second, optimizer.name()));
  try {
    optimizer.load_state_dict(state);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("optim::load: {}: {}", path.string(), e.what()));
  }
}

}  // namespace chainrule::optim
