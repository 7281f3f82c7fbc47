#include "nn/serialize.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/safetensors_json.h"

namespace chainrule::nn {
namespace {

namespace fs = std::filesystem;
using detail::shape_shown;
using detail::shown;

constexpr std::string_view kReserved = "standardizer.";
constexpr std::string_view kMeanName = "standardizer.mean";
constexpr std::string_view kStdName = "standardizer.std";
constexpr std::string_view kDdofKey = "standardizer.ddof";
constexpr std::size_t kMaxProblems = 10;

bool reserved(std::string_view name) { return name.starts_with(kReserved); }

StDType st_dtype(DType d) { return d == DType::float64 ? StDType::F64 : StDType::F32; }

StEntry entry_of(std::string name, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument(fmt::format("nn::save: tensor {} is undefined", shown(name)));
  const auto n = static_cast<std::size_t>(t.numel());
  if (t.dtype() == DType::float64)
    return make_st_entry(std::move(name), t.shape().to_vector(), std::span(t.data<double>(), n));
  return make_st_entry(std::move(name), t.shape().to_vector(), std::span(t.data<float>(), n));
}

// A tensor's values read from the file, already in the dtype of the tensor they will go into.
using Values = std::variant<std::vector<float>, std::vector<double>>;

// The values are copied only after every check has passed: this is the step that cannot fail.
void write_values(Tensor& t, const Values& values) {
  std::visit([&]<class T>(const std::vector<T>& v) { std::copy(v.begin(), v.end(), t.mutable_data<T>()); }, values);
}

// Every problem of one load, so that a user fixing a mismatch sees all of it at once.
class Problems {
 public:
  void add(std::string problem) { list_.push_back(std::move(problem)); }
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  // `source`: "nn::load: <path>" or "nn::load_state_dict".
  [[noreturn]] void raise(const std::string& source) const {
    std::string all;
    for (std::size_t i = 0; i < list_.size() && i < kMaxProblems; ++i) all += (i ? "; " : "") + list_[i];
    if (list_.size() > kMaxProblems) all += fmt::format("; and {} more", list_.size() - kMaxProblems);
    throw std::runtime_error(fmt::format("{}: nothing was loaded: {}", source, all));
  }

 private:
  std::vector<std::string> list_;
};

// An integer entry's values as float `want` (torch keeps counters such as BatchNorm's
// num_batches_tracked as int64): loaded whatever LoadOptions says, since nothing is lost, as long
// as every value is an integer the float type holds exactly (|v| <= 2^24 for float32, 2^53 for
// float64); otherwise nothing, and a problem.
std::optional<Values> exact_values(const StEntry& e, StDType want, Problems& problems) {
  const std::vector<std::int64_t> v = st_values_i64(e);
  const int digits = want == StDType::F32 ? std::numeric_limits<float>::digits : std::numeric_limits<double>::digits;
  const std::int64_t limit = std::int64_t{1} << digits;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] > limit || v[i] < -limit) {
      problems.add(fmt::format("{}: element {} = {} (I64) is beyond the integers {} holds exactly (2^{})",
                               shown(e.name), i, v[i], want == StDType::F32 ? "float32" : "float64", digits));
      return std::nullopt;
    }
  if (want == StDType::F32) return std::vector<float>(v.begin(), v.end());
  return std::vector<double>(v.begin(), v.end());
}

// The entry's values as `want`, or nothing (and a problem) if the dtypes differ and conversion is
// off, or a value does not fit. `owner` is "model" or "standardizer", for the message.
std::optional<Values> values_as(const StEntry& e, StDType want, const LoadOptions& options, std::string_view owner,
                                Problems& problems) {
  if (e.dtype == StDType::I64) return exact_values(e, want, problems);
  if (e.dtype != want && !options.allow_dtype_conversion) {
    problems.add(fmt::format("{}: dtype {} in the file vs {} in the {} (LoadOptions{{.allow_dtype_conversion = "
                             "true}} converts)",
                             shown(e.name), st_dtype_name(e.dtype), st_dtype_name(want), owner));
    return std::nullopt;
  }
  if (e.dtype == want) {
    if (want == StDType::F64) return st_values_f64(e);
    return st_values_f32(e);
  }
  if (want == StDType::F64) {
    const std::vector<float> f = st_values_f32(e);
    return std::vector<double>(f.begin(), f.end());  // exact
  }
  const std::vector<double> d = st_values_f64(e);
  std::vector<float> out(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    // Casting a finite double beyond float's range is undefined behaviour, and infinity would be
    // a silent change of the model: refuse it.
    if (std::isfinite(d[i]) && std::abs(d[i]) > std::numeric_limits<float>::max()) {
      problems.add(fmt::format("{}: element {} = {} does not fit in float32", shown(e.name), i, d[i]));
      return std::nullopt;
    }
    out[i] = static_cast<float>(d[i]);
  }
  return out;
}

// The standardiser the file describes, or nothing (and problems). `current` is the caller's: if
// it is already fitted, the file's width must match it, as a parameter's shape must.
std::optional<Standardizer> read_standardizer(const StFile& file, const StEntry* mean, const StEntry* sd,
                                              const Standardizer& current, const LoadOptions& options,
                                              Problems& problems) {
  if (!mean && !sd) {
    problems.add(fmt::format("the file holds no standardizer ({} and {} are absent; it was saved without one): "
                             "pass no Standardizer to load",
                             shown(kMeanName), shown(kStdName)));
    return std::nullopt;
  }
  if (!mean || !sd) {
    problems.add(fmt::format("missing {} (the file has {})", shown(mean ? kStdName : kMeanName),
                             shown(mean ? kMeanName : kStdName)));
    return std::nullopt;
  }
  const std::size_t known = problems.size();
  if (mean->shape.size() != 1 || mean->shape[0] < 1)
    problems.add(fmt::format("{}: shape {}, expected [D] with D >= 1", shown(kMeanName), shape_shown(mean->shape)));
  else if (sd->shape != mean->shape)
    problems.add(fmt::format("{}: shape {} differs from {}'s {}", shown(kStdName), shape_shown(sd->shape),
                             shown(kMeanName), shape_shown(mean->shape)));
  else if (current.fitted() && static_cast<std::size_t>(mean->shape[0]) != current.width())
    problems.add(fmt::format("{}: shape {} in the file vs [{}] in the standardizer", shown(kMeanName),
                             shape_shown(mean->shape), current.width()));
  Standardizer::Options fitted_with;
  if (const auto it = file.metadata.find(std::string(kDdofKey)); it != file.metadata.end()) {
    const std::string& text = it->second;
    std::size_t ddof = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ddof);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
      problems.add(fmt::format("__metadata__ {} is {}, expected a non-negative integer", shown(kDdofKey), shown(text)));
    fitted_with.ddof = ddof;
  }
  auto m = values_as(*mean, StDType::F64, options, "standardizer", problems);
  auto s = values_as(*sd, StDType::F64, options, "standardizer", problems);
  if (problems.size() != known || !m || !s) return std::nullopt;
  try {
    return Standardizer::from_values(std::get<std::vector<double>>(std::move(*m)),
                                     std::get<std::vector<double>>(std::move(*s)), fitted_with);
  } catch (const std::invalid_argument& e) {
    problems.add(fmt::format("the file's standardizer is invalid: {}", e.what()));
    return std::nullopt;
  }
}

}  // namespace

StFile to_st_file(const Module& module, const Standardizer* scaler, std::map<std::string, std::string> metadata) {
  for (const auto& entry : metadata)
    if (reserved(entry.first))
      throw std::invalid_argument(fmt::format(
          "nn::save: metadata key {} is reserved: keys beginning with \"standardizer.\" are written by save itself",
          shown(entry.first)));
  StFile file;
  for (const auto& [name, tensor] : module.named_state()) {
    if (reserved(name))
      throw std::invalid_argument(fmt::format(
          "nn::save: parameter or buffer {} begins with the reserved \"standardizer.\"; rename the child module", shown(name)));
    file.tensors.push_back(entry_of(name, tensor));
  }
  if (scaler) {
    if (!scaler->fitted())
      throw std::invalid_argument("nn::save: the standardizer is not fitted; call fit() or from_values() first, or pass "
                                  "nullptr to save the model alone");
    const std::vector<std::int64_t> shape{static_cast<std::int64_t>(scaler->width())};
    file.tensors.push_back(make_st_entry(std::string(kMeanName), shape, std::span(scaler->mean())));
    file.tensors.push_back(make_st_entry(std::string(kStdName), shape, std::span(scaler->stddev())));
    metadata.emplace(kDdofKey, fmt::format("{}", scaler->options().ddof));
  }
  metadata.try_emplace("format", "chainrule");
  file.metadata = std::move(metadata);
  return file;
}

void save(const Module& module, const fs::path& path, const Standardizer* scaler,
          std::map<std::string, std::string> metadata) {
  save_safetensors(path, to_st_file(module, scaler, std::move(metadata)));
}

namespace {

// load()'s checks and copies on a file's contents. `function` names the call in errors, `source`
// the call and the file ("nn::load: model.safetensors").
void load_entries(Module& module, const StFile& file, Standardizer* scaler, LoadOptions options, const char* function,
                  const std::string& source) {
  std::map<std::string_view, const StEntry*> in_file;
  for (const StEntry& e : file.tensors) in_file.emplace(e.name, &e);
  const auto find = [&](std::string_view name) -> const StEntry* {
    const auto it = in_file.find(name);
    return it == in_file.end() ? nullptr : it->second;
  };

  Problems problems;
  std::vector<std::pair<Tensor, Values>> copies;
  std::set<std::string_view> used{kMeanName, kStdName};  // the standardiser's are judged below
  const std::vector<std::string> optional = module.optional_state();
  for (const auto& [name, param] : module.named_state()) {
    if (reserved(name))
      throw std::invalid_argument(fmt::format(
          "{}: parameter or buffer {} begins with the reserved \"standardizer.\"; rename the child module", function,
          shown(name)));
    const StEntry* e = find(name);
    if (!e) {
      if (std::find(optional.begin(), optional.end(), name) == optional.end())
        problems.add(fmt::format("missing {}", shown(name)));
      continue;
    }
    used.insert(e->name);
    const std::vector<std::int64_t> shape = param.shape().to_vector();
    if (e->shape != shape) {
      problems.add(fmt::format("{}: shape {} in the file vs {} in the model", shown(name), shape_shown(e->shape),
                               shape_shown(shape)));
      continue;
    }
    if (auto values = values_as(*e, st_dtype(param.dtype()), options, "model", problems))
      copies.emplace_back(param, std::move(*values));
  }

  const StEntry *mean = find(kMeanName), *sd = find(kStdName);
  std::optional<Standardizer> new_scaler;
  if (scaler) new_scaler = read_standardizer(file, mean, sd, *scaler, options, problems);
  else if (options.strict && (mean || sd))
    problems.add(fmt::format("the file holds a fitted standardizer ({}, {}): pass a Standardizer to load it, or "
                             "LoadOptions{{.strict = false}} to ignore it",
                             shown(kMeanName), shown(kStdName)));
  if (options.strict)
    for (const StEntry& e : file.tensors)
      if (!used.contains(e.name)) problems.add(fmt::format("unexpected {}", shown(e.name)));
  if (!problems.empty()) problems.raise(source);

  NoGradGuard no_grad;
  for (auto& [param, values] : copies) write_values(param, values);
  if (scaler) *scaler = std::move(*new_scaler);
}

}  // namespace

void load(Module& module, const fs::path& path, Standardizer* scaler, LoadOptions options) {
  load_entries(module, load_safetensors(path), scaler, options, "nn::load", fmt::format("nn::load: {}", path.string()));
}

std::map<std::string, Tensor> state_dict(const Module& module) {
  NoGradGuard no_grad;
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : module.named_state()) out.emplace(name, tensor.detach().clone());
  return out;
}

void load_state_dict(Module& module, const std::map<std::string, Tensor>& state, LoadOptions options) {
  StFile entries;
  for (const auto& [name, tensor] : state) {
    if (!tensor.defined())
      throw std::invalid_argument(fmt::format("nn::load_state_dict: the tensor {} is undefined", shown(name)));
    entries.tensors.push_back(entry_of(name, tensor));
  }
  load_entries(module, entries, nullptr, options, "nn::load_state_dict", "nn::load_state_dict");
}

void save_tensors(const std::map<std::string, Tensor>& tensors, const fs::path& path,
                  std::map<std::string, std::string> metadata) {
  StFile file;
  for (const auto& [name, tensor] : tensors) file.tensors.push_back(entry_of(name, tensor));
  file.metadata = std::move(metadata);
  save_safetensors(path, file);
}

std::map<std::string, Tensor> load_tensors(const fs::path& path, std::map<std::string, std::string>* metadata) {
  StFile file = load_safetensors(path);
  for (const StEntry& e : file.tensors) {  // before allocating anything
    if (e.shape.size() > static_cast<std::size_t>(kMaxDims))
      throw std::runtime_error(fmt::format("nn::load_tensors: {}: tensor {} has {} dimensions, over chainrule's limit "
                                           "of {}",
                                           path.string(), shown(e.name), e.shape.size(), kMaxDims));
    // An empty tensor's bytes are 0 whatever its other dimensions, so the file format allows
    // [0, 2^62, 2^62]; a Tensor's strides are products of its dimensions, and these would overflow.
    std::int64_t stride = 1;
    for (std::int64_t d : e.shape)
      if (d != 0 && __builtin_mul_overflow(stride, d, &stride))
        throw std::runtime_error(fmt::format("nn::load_tensors: {}: tensor {} has shape {}, whose non-zero dimensions "
                                             "multiply to over 2^63 - 1 (a tensor's strides would overflow)",
                                             path.string(), shown(e.name), shape_shown(e.shape)));
  }
  // An I64 tensor becomes float64, if every value converts exactly.
  std::vector<Values> values;
  Problems problems;
  for (const StEntry& e : file.tensors) {
    if (e.dtype == StDType::I64) {
      if (auto v = exact_values(e, StDType::F64, problems)) values.push_back(std::move(*v));
    } else {
      values.push_back(e.dtype == StDType::F64 ? Values(st_values_f64(e)) : Values(st_values_f32(e)));
    }
  }
  if (!problems.empty()) problems.raise(fmt::format("nn::load_tensors: {}", path.string()));
  std::map<std::string, Tensor> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const bool f64 = std::holds_alternative<std::vector<double>>(values[i]);
    Tensor t = zeros(Shape(file.tensors[i].shape), f64 ? DType::float64 : DType::float32);
    write_values(t, values[i]);
    out.emplace(file.tensors[i].name, std::move(t));
  }
  if (metadata) *metadata = std::move(file.metadata);
  return out;
}

}  // namespace chainrule::nn
