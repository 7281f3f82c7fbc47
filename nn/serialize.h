// Saving and loading a model: a module's named parameters and buffers, and optionally the
// Standardizer fitted on its training data, in one safetensors file (format: nn/safetensors.h)
// that Python's safetensors and PyTorch read with the same names and values.
//
//   auto model = std::make_shared<nn::Sequential>(
//       std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).dtype(DType::float64)),
//       std::make_shared<nn::Sigmoid>(),
//       std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).dtype(DType::float64)));
//   nn::Standardizer scaler;
//   scaler.fit(rows);
//   ... train ...
//   nn::save(*model, "model.safetensors", &scaler);
//
//   auto fresh = /* the same architecture, any initial values */;
//   nn::Standardizer loaded_scaler;
//   nn::load(*fresh, "model.safetensors", &loaded_scaler);   // fresh now predicts as model did
//
// What the file holds (every tensor row-major, little-endian):
//   - each parameter, then each persistent buffer, under its dotted name from Module::named_state()
//     ("0.weight", "0.bias", "hidden.weight", "mask"), dtype F32 or F64 as the tensor's, shape as
//     the tensor's (as torch's state_dict(), so load_state_dict takes both); a Dense's
//     weight is [out_features, in_features] as torch.nn.Linear's, so a torch.nn.Sequential of the
//     same layers accepts the names and shapes as they are;
//   - with a standardiser: "standardizer.mean" and "standardizer.std", F64, shape [D];
//   - "__metadata__": "format": "chainrule" (unless the caller gives a "format" of its own), the
//     standardiser's "standardizer.ddof" (a decimal integer, e.g. "1"), and the caller's entries.
// Names (tensor names and metadata keys) beginning with "standardizer." are reserved for the
// standardiser: a module with such a parameter, or caller metadata with such a key, cannot be saved.
//
// Reading it from Python (the standardiser's tensors are not module parameters, so drop them):
//
//   from safetensors.torch import load_file
//   state = load_file("model.safetensors")                  # {"0.weight": tensor, ...}
//   mean, std = state.pop("standardizer.mean"), state.pop("standardizer.std")
//   net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 1)).double()
//   net.load_state_dict(state)
//   y = net((x - mean) / std)
//
// Writes are atomic (save_safetensors): a crash or error mid-save leaves the previous file as it
// was. Loads are all-or-nothing: the whole file is read and checked against the model first, and
// only then are the values copied in, so a failed load leaves the model and the standardiser as
// they were.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "autograd/tensor.h"
#include "nn/module.h"
#include "nn/safetensors.h"
#include "nn/standardizer.h"

namespace chainrule::nn {

// How strictly load() matches the file to the model.
//   nn::load(*model, path, nullptr, {.strict = false, .allow_dtype_conversion = true});
struct LoadOptions {
  // true: a tensor in the file that the model does not have (and a standardiser in the file when
  // load() is given none) is an error. false: such tensors are ignored. Missing parameters are an
  // error either way.
  bool strict = true;
  // false: a tensor's dtype must equal the parameter's (F32 file into a float32 parameter).
  // true: F32 values are widened exactly into float64 parameters, and F64 values are rounded to
  // the nearest float32 (a finite value beyond float32's range is an error, not infinity). The
  // standardiser's tensors follow the same rule against F64. Either way, an I64 tensor (torch keeps
  // counters such as BatchNorm's num_batches_tracked as int64) loads into a float32 or float64
  // tensor when every value is an integer that type holds exactly (|v| <= 2^24 or 2^53).
  bool allow_dtype_conversion = false;
};

// Writes every named parameter and persistent buffer of `module` (and, if given, the fitted
// `scaler`) to `path`, atomically, with `metadata` under "__metadata__" (layout above).
//   nn::save(*model, "model.safetensors");
//   nn::save(*model, "model.safetensors", &scaler, {{"epochs", "1000"}});
// Throws std::invalid_argument for an unfitted scaler, a reserved name ("standardizer." prefix) in
// the module or in `metadata`, or names the format cannot hold (non-UTF-8); std::runtime_error
// naming the path for an I/O failure. The previous file is intact after any error.
void save(const Module& module, const std::filesystem::path& path, const Standardizer* scaler = nullptr,
          std::map<std::string, std::string> metadata = {});

// Reads `path` into the parameters and persistent buffers of `module` (in place: handles held elsewhere, for instance by
// an optimizer, see the new values; each parameter's version is bumped, so a graph recorded before
// the load refuses to backward through the old values) and, if given, into `scaler`.
// Everything is checked before anything is written:
//   - the file is a valid safetensors file (truncated or corrupt files are refused);
//   - every parameter and persistent buffer of the module is in the file ("missing \"0.weight\""),
//     except those Module::optional_state() lists (BatchNorm's num_batches_tracked, which files
//     written before chainrule had it lack): those keep their values when absent;
//   - with options.strict, the file has no other tensor ("unexpected \"foo\"");
//   - shapes are equal ("\"0.weight\": shape [3, 2] in the file vs [2, 3] in the model");
//   - dtypes are equal, or convertible with options.allow_dtype_conversion
//     ("\"0.weight\": dtype F32 in the file vs F64 in the model");
//   - with a scaler: the file holds a standardiser ("standardizer.mean" and "standardizer.std" of
//     equal width D >= 1, finite means, finite positive deviations, equal to the scaler's width if
//     it is already fitted); without one and with options.strict, it holds none.
// On success the scaler is replaced by Standardizer::from_values(mean, std, {.ddof = the file's
// "standardizer.ddof"}), so a later fit() uses the same ddof as the saved one.
// Throws std::runtime_error naming the path and listing every problem found (the first 10), e.g.
//   nn::load: model.safetensors: nothing was loaded: "0.weight": shape [3, 2] in the file vs
//   [2, 3] in the model; missing "2.weight"; unexpected "hidden.bias"
// (errors of the file itself, such as truncation, come from load_safetensors and name the path).
// std::invalid_argument if the module itself has a parameter beginning with "standardizer.".
// The model and the scaler are untouched after any error.
void load(Module& module, const std::filesystem::path& path, Standardizer* scaler = nullptr,
          LoadOptions options = {});

// The model's state in memory (torch's model.state_dict()): every parameter and persistent buffer
// under its dotted name (Module::named_state), each a copy, so that later training does not change
// it; and load_state_dict, which copies such a map back with load()'s checks and options (names,
// shapes, dtypes; all or nothing: std::runtime_error "nn::load_state_dict: nothing was loaded: ..."
// listing the problems; std::invalid_argument for an undefined tensor). For the best model so far:
//   if (val_loss < best_loss) best = nn::state_dict(*model);
//   ...
//   nn::load_state_dict(*model, best);
std::map<std::string, Tensor> state_dict(const Module& module);
void load_state_dict(Module& module, const std::map<std::string, Tensor>& state, LoadOptions options = {});

// Writes plain tensors under their map keys (any non-empty UTF-8 names but "__metadata__"),
// atomically; each keeps its dtype and shape.
//   nn::save_tensors({{"x", x}, {"y", y}}, "batch.safetensors");
// Throws std::invalid_argument for an undefined tensor or a name the format cannot hold,
// std::runtime_error for an I/O failure.
void save_tensors(const std::map<std::string, Tensor>& tensors, const std::filesystem::path& path,
                  std::map<std::string, std::string> metadata = {});

// Reads every tensor of a safetensors file as a new tensor of the same dtype and shape that does
// not require grad (an I64 tensor as float64, when every value is an integer float64 holds
// exactly: |v| <= 2^53), and its metadata into `*metadata` when given.
//   auto t = nn::load_tensors("batch.safetensors");   // t.at("x")
// Throws std::runtime_error naming the path for an unreadable or malformed file, a tensor of
// more than kMaxDims (8) dimensions, or an empty tensor whose non-zero dimensions multiply to
// over 2^63 - 1 (the format allows [0, 2^62, 2^62]; a Tensor's strides cannot hold it).
std::map<std::string, Tensor> load_tensors(const std::filesystem::path& path,
                                           std::map<std::string, std::string>* metadata = nullptr);

// What save() writes, as an StFile: save(m, p, s, md) is save_safetensors(p, to_st_file(m, s, md)).
// For callers that want the bytes in memory (encode_safetensors) or their own way of writing them.
//   std::vector<std::byte> bytes = encode_safetensors(nn::to_st_file(*model, &scaler));
// Same std::invalid_argument errors as save().
StFile to_st_file(const Module& module, const Standardizer* scaler = nullptr,
                  std::map<std::string, std::string> metadata = {});

}  // namespace chainrule::nn
