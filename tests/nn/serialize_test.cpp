#include "nn/serialize.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/init.h"
#include "nn/sequential.h"
#include "tests/autograd/testing.h"

namespace {

using namespace chainrule;
using namespace chainrule::nn;
using Catch::Contains;
namespace fs = std::filesystem;

using chainrule::testing::TempDir;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Dense(2, 3) + Sigmoid + Dense(3, out): parameters 0.weight [3, 2], 0.bias [3], 2.weight [out, 3], 2.bias [out].
std::shared_ptr<Sequential> make_net(DType dtype, std::uint64_t seed, std::int64_t out = 1) {
  return std::make_shared<Sequential>(std::make_shared<Dense>(DenseOptions(2, 3).dtype(dtype).seed(seed)),
                                      std::make_shared<Sigmoid>(),
                                      std::make_shared<Dense>(DenseOptions(3, out).dtype(dtype).seed(seed + 1)));
}

Standardizer fitted_scaler(std::size_t ddof = 1) {
  Standardizer z(Standardizer::Options{.ddof = ddof});
  z.fit({{2, 1.5}, {2.8, 1.2}, {1.5, 1}, {2.5, 2}, {7.7, 3.5}});
  return z;
}

// Everything a load could change, bit for bit: names, dtypes, shapes, raw bytes and versions.
struct ParamState {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;
  std::uint32_t version;
  bool operator==(const ParamState&) const = default;
};

std::vector<ParamState> snapshot(const Module& m) {
  std::vector<ParamState> out;
  for (const auto& [name, t] : m.named_parameters()) {
    const auto* p = t.dtype() == DType::float64 ? reinterpret_cast<const unsigned char*>(t.data<double>())
                                                : reinterpret_cast<const unsigned char*>(t.data<float>());
    out.push_back({name, t.dtype(), t.shape().to_vector(),
                   std::vector<unsigned char>(p, p + t.numel() * dtype_size(t.dtype())), t.version()});
  }
  return out;
}

// The parameters' raw bytes only (a successful load bumps versions, so those differ).
std::vector<std::vector<unsigned char>> values_of(const Module& m) {
  std::vector<std::vector<unsigned char>> out;
  for (const ParamState& s : snapshot(m)) out.push_back(s.bytes);
  return out;
}

using ScalerState = std::tuple<std::vector<double>, std::vector<double>, std::size_t>;
ScalerState state_of(const Standardizer& z) { return {z.mean(), z.stddev(), z.options().ddof}; }

// Loads `path` into `model` and `scaler`, expecting failure with `message`, and checks that
// neither changed at all.
void check_rejected(Module& model, const fs::path& path, Standardizer* scaler, const std::string& message,
                    LoadOptions options = {}) {
  const auto before = snapshot(model);
  const auto scaler_before = scaler ? state_of(*scaler) : ScalerState{};
  CHECK_THROWS_WITH(load(model, path, scaler, options), Contains(path.filename().string()) && Contains(message));
  CHECK(snapshot(model) == before);
  if (scaler) CHECK(state_of(*scaler) == scaler_before);
}

}  // namespace

TEST_CASE("serialize: round trip of a Sequential with a fitted standardizer") {
  const DType dtype = GENERATE(DType::float32, DType::float64);
  INFO(dtype_name(dtype));
  TempDir dir;
  const fs::path path = dir.path() / "model.safetensors";
  auto model = make_net(dtype, 1);
  const Standardizer scaler = fitted_scaler(0);
  save(*model, path, &scaler, {{"epochs", "5"}});

  const StFile file = load_safetensors(path);
  const StDType st = dtype == DType::float64 ? StDType::F64 : StDType::F32;
  std::vector<std::string> names;
  for (const StEntry& e : file.tensors) {
    names.push_back(e.name);
    CHECK(e.dtype == (e.name.starts_with("standardizer.") ? StDType::F64 : st));
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"0.bias", "0.weight", "2.bias", "2.weight", "standardizer.mean",
                                          "standardizer.std"});
  CHECK(file.metadata == std::map<std::string, std::string>{
                             {"epochs", "5"}, {"format", "chainrule"}, {"standardizer.ddof", "0"}});

  auto fresh = make_net(dtype, 99);
  REQUIRE(values_of(*fresh) != values_of(*model));
  Tensor held = fresh->named_parameters()[0].second;  // as an optimizer would hold it
  const auto version = held.version();
  Standardizer loaded;
  load(*fresh, path, &loaded);

  const auto a = snapshot(*model), b = snapshot(*fresh);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(b[i].name == a[i].name);
    CHECK(b[i].dtype == a[i].dtype);
    CHECK(b[i].shape == a[i].shape);
    CHECK(b[i].bytes == a[i].bytes);
  }
  CHECK(held.version() > version);
  CHECK(held.to_vector() == model->named_parameters()[0].second.to_vector());
  CHECK(loaded.mean() == scaler.mean());
  CHECK(loaded.stddev() == scaler.stddev());
  CHECK(loaded.options().ddof == 0);  // restored from "standardizer.ddof"

  const Tensor x = from_vector(loaded.transform_row({2.0, 1.5}), {1, 2}, dtype);
  CHECK(fresh->forward(x).to_vector() == model->forward(x).to_vector());
}

TEST_CASE("serialize: byte layout of a saved Dense(2, 1) matches the safetensors specification") {
  TempDir dir;
  const fs::path path = dir.path() / "tiny.safetensors";
  auto model = std::make_shared<Sequential>(std::make_shared<Dense>(DenseOptions(2, 1).dtype(DType::float64)));
  set_values(model->named_parameters()[0].second, {{0.5, -2.0}});  // 0.weight [1, 2]
  set_values(model->named_parameters()[1].second, {1.0});           // 0.bias [1]
  save(*model, path, nullptr, {{"epochs", "7"}});

  // The spec: 8 bytes of little-endian header length N, N bytes of JSON padded with spaces so
  // that 8 + N is a multiple of 8, then the data. Our writer puts metadata first with sorted keys,
  // then the tensors by element size and name ("0.bias" < "0.weight"), the data in that order.
  const std::string json =
      R"({"__metadata__":{"epochs":"7","format":"chainrule"},)"
      R"("0.bias":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
      R"("0.weight":{"dtype":"F64","shape":[1,2],"data_offsets":[8,24]}})";
  REQUIRE(json.size() == 173);  // + 3 spaces = 176 = 0xB0
  using namespace std::string_literals;
  const std::string expected = "\xB0\0\0\0\0\0\0\0"s + json + "   " +
                               "\0\0\0\0\0\0\xF0\x3F"s +  // 0.bias[0] = 1.0 (0x3FF0000000000000)
                               "\0\0\0\0\0\0\xE0\x3F"s +  // 0.weight[0][0] = 0.5
                               "\0\0\0\0\0\0\x00\xC0"s;   // 0.weight[0][1] = -2.0
  REQUIRE(expected.size() == 8 + 176 + 24);
  CHECK(read_bytes(path) == expected);

  const std::vector<std::byte> in_memory = encode_safetensors(to_st_file(*model, nullptr, {{"epochs", "7"}}));
  CHECK(std::string(reinterpret_cast<const char*>(in_memory.data()), in_memory.size()) == expected);
}

TEST_CASE("serialize: an interrupted save leaves the old file byte-identical and loadable") {
  TempDir dir;
  const fs::path path = dir.path() / "model.safetensors";
  auto old_model = make_net(DType::float64, 1);
  const Standardizer scaler = fitted_scaler();
  save(*old_model, path, &scaler);
  const auto old_bytes = read_bytes(path);

  auto new_model = make_net(DType::float64, 2);
  const StFile new_file = to_st_file(*new_model, &scaler);  // exactly what save() would write
  const std::size_t full = encode_safetensors(new_file).size();
  for (std::size_t k : {std::size_t{0}, std::size_t{8}, full / 2, full - 1, full}) {
    INFO("failure after " << k << " of " << full << " bytes");
    CHECK_THROWS_WITH(nn::detail::save_safetensors_interrupted_for_test(path, new_file, k),
                      Contains("simulated failure"));
    CHECK(read_bytes(path) == old_bytes);
    CHECK(dir.listing().size() == 1);  // no temporary file left beside model.safetensors
  }
  auto fresh = make_net(DType::float64, 3);
  Standardizer loaded;
  load(*fresh, path, &loaded);
  CHECK(values_of(*fresh) == values_of(*old_model));
  CHECK(loaded.mean() == scaler.mean());

  save(*new_model, path, &scaler);  // without the failure the new model replaces the old
  load(*fresh, path, &loaded);
  CHECK(values_of(*fresh) == values_of(*new_model));
}

TEST_CASE("serialize: truncated files are rejected and leave the model untouched") {
  TempDir dir;
  const fs::path good = dir.path() / "good.safetensors", cut = dir.path() / "cut.safetensors";
  const Standardizer scaler = fitted_scaler();
  save(*make_net(DType::float32, 1), good, &scaler);
  const auto bytes = read_bytes(good);
  auto model = make_net(DType::float32, 7);
  Standardizer target = fitted_scaler();
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{8}, std::size_t{40}, bytes.size() / 2,
                        bytes.size() - 4, bytes.size() - 1}) {
    INFO("cut to " << n << " of " << bytes.size() << " bytes");
    write_bytes(cut, bytes.substr(0, n));
    check_rejected(*model, cut, &target, "truncated");
  }
  check_rejected(*model, dir.path() / "absent.safetensors", &target, "cannot open");
}

TEST_CASE("serialize: corrupt headers are rejected and leave the model untouched") {
  TempDir dir;
  const fs::path good = dir.path() / "good.safetensors", bad = dir.path() / "bad.safetensors";
  const Standardizer scaler = fitted_scaler();
  save(*make_net(DType::float64, 1), good, &scaler);
  const std::string text = read_bytes(good);
  auto model = make_net(DType::float64, 7);
  Standardizer target;

  const auto corrupt = [&](std::string_view from, std::string_view to) {
    std::string s = text;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(from.size() == to.size());  // the header length stays right
    s.replace(at, from.size(), to);
    write_bytes(bad, s);
  };
  corrupt("{\"__metadata__\"", "[\"__metadata__\"");
  check_rejected(*model, bad, &target, "bad JSON header");
  corrupt("\"dtype\":\"F64\"", "\"dtype\":\"F6x\"");
  check_rejected(*model, bad, &target, "unknown dtype \"F6x\"");
  corrupt("\"dtype\":\"F64\"", "\"dtype\":\"F16\"");
  check_rejected(*model, bad, &target, "unsupported dtype \"F16\"");
  corrupt("\"shape\":[3,2]", "\"shape\":[2,2]");  // 0.weight's offsets no longer match its shape
  check_rejected(*model, bad, &target, "\"0.weight\": data_offsets");

  std::string huge = text;
  huge[7] = '\x01';  // header length 2^56 + ...
  write_bytes(bad, huge);
  check_rejected(*model, bad, &target, "over the limit");

  StFile file = to_st_file(*make_net(DType::float64, 1), &scaler);  // a bad ddof save() would never write
  file.metadata["standardizer.ddof"] = "one";
  save_safetensors(bad, file);
  check_rejected(*model, bad, &target, "\"standardizer.ddof\" is \"one\", expected a non-negative integer");

  file = to_st_file(*make_net(DType::float64, 1), &scaler);
  for (StEntry& e : file.tensors)
    if (e.name == "standardizer.std") e = make_st_entry(e.name, {2}, std::vector<double>{1.0, 0.0});
  save_safetensors(bad, file);
  check_rejected(*model, bad, &target, "sd[1] = 0 must be finite and > 0");
}

TEST_CASE("serialize: wrong names are rejected unless non-strict allows extra tensors") {
  TempDir dir;
  const fs::path path = dir.path() / "named.safetensors";
  auto named = std::make_shared<Sequential>();
  named->push_back("hidden", std::make_shared<Dense>(DenseOptions(2, 3).seed(1)));
  named->push_back("act", std::make_shared<Sigmoid>());
  named->push_back("out", std::make_shared<Dense>(DenseOptions(3, 1).seed(2)));
  save(*named, path);
  auto model = make_net(DType::float32, 7);
  check_rejected(*model, path, nullptr, "missing \"0.weight\"");
  check_rejected(*model, path, nullptr, "unexpected \"hidden.weight\"");
  check_rejected(*model, path, nullptr, "missing \"2.bias\"", {.strict = false});  // missing is always an error

  // The model's tensors plus one more: strict refuses "foo", non-strict ignores it.
  auto source = make_net(DType::float32, 1);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : source->named_parameters()) tensors.emplace(name, t);
  tensors.emplace("foo", zeros({2}));
  save_tensors(tensors, path);
  check_rejected(*model, path, nullptr, "unexpected \"foo\"");
  load(*model, path, nullptr, {.strict = false});
  CHECK(values_of(*model) == values_of(*source));
}

TEST_CASE("serialize: wrong shapes are rejected and no parameter is half-loaded") {
  TempDir dir;
  const fs::path path = dir.path() / "shapes.safetensors";
  save(*std::make_shared<Sequential>(std::make_shared<Dense>(DenseOptions(2, 3))), path);
  auto transposed = std::make_shared<Sequential>(std::make_shared<Dense>(DenseOptions(3, 2)));
  check_rejected(*transposed, path, nullptr, "\"0.weight\": shape [3, 2] in the file vs [2, 3] in the model");
  check_rejected(*transposed, path, nullptr, "\"0.bias\": shape [3] in the file vs [2] in the model");

  // 0.weight and 0.bias match, 2.* do not: the matching ones must not be written either.
  save(*make_net(DType::float32, 1, 2), path);
  auto model = make_net(DType::float32, 7, 1);
  check_rejected(*model, path, nullptr, "\"2.weight\": shape [2, 3] in the file vs [1, 3] in the model");
}

TEST_CASE("serialize: a float32 file loads into a float64 model only with dtype conversion") {
  TempDir dir;
  const fs::path path = dir.path() / "f32.safetensors";
  auto f32 = make_net(DType::float32, 1);
  save(*f32, path);
  auto f64 = make_net(DType::float64, 7);
  check_rejected(*f64, path, nullptr, "\"0.weight\": dtype F32 in the file vs F64 in the model");
  check_rejected(*f64, path, nullptr, "allow_dtype_conversion");

  load(*f64, path, nullptr, {.allow_dtype_conversion = true});
  const auto a = f32->named_parameters(), b = f64->named_parameters();
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].second.dtype() == DType::float64);
    CHECK(b[i].second.to_vector() == a[i].second.to_vector());  // widening is exact
  }

  // Narrowing rounds to nearest, and refuses what float32 cannot hold.
  const fs::path wide = dir.path() / "f64.safetensors";
  save(*f64, wide);
  auto back = make_net(DType::float32, 9);
  load(*back, wide, nullptr, {.allow_dtype_conversion = true});
  CHECK(values_of(*back) == values_of(*f32));
  {
    NoGradGuard no_grad;
    f64->named_parameters()[1].second.set({2}, 1e300);
  }
  save(*f64, wide);
  check_rejected(*back, wide, nullptr, "\"0.bias\": element 2 = 1e+300 does not fit in float32",
                 {.allow_dtype_conversion = true});

  // The standardiser is F64 in the file; an F32 one converts only when allowed.
  StFile file = to_st_file(*f32, nullptr);
  file.tensors.push_back(make_st_entry("standardizer.mean", {2}, std::vector<float>{1.f, 2.f}));
  file.tensors.push_back(make_st_entry("standardizer.std", {2}, std::vector<float>{0.5f, 4.f}));
  save_safetensors(path, file);
  Standardizer z;
  check_rejected(*f32, path, &z, "\"standardizer.mean\": dtype F32 in the file vs F64 in the standardizer");
  load(*f32, path, &z, {.allow_dtype_conversion = true});
  CHECK(z.stddev() == std::vector<double>{0.5, 4.0});
}

TEST_CASE("serialize: a standardizer in the file and in the call must agree") {
  TempDir dir;
  const fs::path bare = dir.path() / "bare.safetensors", with = dir.path() / "with.safetensors";
  auto source = make_net(DType::float64, 1);
  Standardizer scaler = fitted_scaler();
  save(*source, bare);
  save(*source, with, &scaler);
  auto model = make_net(DType::float64, 7);

  Standardizer target = Standardizer::from_values({1, 2}, {3, 4});
  check_rejected(*model, bare, &target, "the file holds no standardizer");
  check_rejected(*model, with, nullptr, "the file holds a fitted standardizer");
  Standardizer wide = Standardizer::from_values({1, 2, 3}, {1, 1, 1});
  check_rejected(*model, with, &wide, "\"standardizer.mean\": shape [2] in the file vs [3] in the standardizer");

  load(*model, with, nullptr, {.strict = false});  // ignores the standardiser
  CHECK(values_of(*model) == values_of(*source));
  load(*model, with, &target);  // a fitted standardiser of the same width is replaced
  CHECK(target.mean() == scaler.mean());

  const Standardizer unfitted;
  CHECK_THROWS_WITH(save(*source, with, &unfitted), Contains("not fitted"));
  CHECK_THROWS_WITH(save(*source, with, nullptr, {{"standardizer.ddof", "3"}}),
                    Contains("metadata key \"standardizer.ddof\" is reserved"));
  Standardizer reloaded;
  load(*model, with, &reloaded);  // the failed saves left the file as it was
  CHECK(reloaded.mean() == scaler.mean());
}

TEST_CASE("serialize: save_tensors and load_tensors round trip plain tensors") {
  TempDir dir;
  const fs::path path = dir.path() / "tensors.safetensors";
  const Tensor x = tensor({{1.5, -2}, {0.25, 3}});
  const Tensor y = from_vector({42}, {}, DType::float64);
  const Tensor empty = zeros({0, 2}, DType::float64);
  save_tensors({{"x", x}, {"y", y}, {"nested.empty", empty}}, path, {{"note", "batch"}});
  CHECK(load_safetensors(path).metadata == std::map<std::string, std::string>{{"note", "batch"}});

  const auto back = load_tensors(path);
  REQUIRE(back.size() == 3);
  for (const auto& [name, t] : std::map<std::string, Tensor>{{"x", x}, {"y", y}, {"nested.empty", empty}}) {
    INFO(name);
    const Tensor& b = back.at(name);
    CHECK(b.dtype() == t.dtype());
    CHECK(b.shape() == t.shape());
    CHECK(b.to_vector() == t.to_vector());
    CHECK_FALSE(b.requires_grad());
  }

  CHECK_THROWS_WITH(save_tensors({{"u", Tensor()}}, path), Contains("\"u\" is undefined"));
  CHECK(load_tensors(path).size() == 3);
  StFile deep;
  deep.tensors.push_back(make_st_entry("deep", std::vector<std::int64_t>(9, 1), std::vector<float>{1.f}));
  save_safetensors(path, deep);
  CHECK_THROWS_WITH(load_tensors(path), Contains("\"deep\" has 9 dimensions"));
}

// Found by a hand-crafted fuzz case: [0, 2^62, 2^62] holds no byte, so the file is valid, but the
// tensor load_tensors made of it overflowed int64 in its strides (UBSan: signed overflow in
// contiguous_strides, from a later transpose).
TEST_CASE("serialize: load_tensors refuses an empty tensor whose strides would overflow") {
  TempDir dir;
  const fs::path path = dir.path() / "empty.safetensors";
  StFile f;
  f.tensors.push_back(make_st_entry("e", {0, std::int64_t{1} << 62, std::int64_t{1} << 62}, std::vector<float>{}));
  f.tensors.push_back(make_st_entry("ok", {0, std::int64_t{1} << 61, 2}, std::vector<float>{}));
  save_safetensors(path, f);
  REQUIRE(load_safetensors(path).tensors.size() == 2);  // the format itself allows it
  CHECK_THROWS_AS(load_tensors(path), std::runtime_error);
  CHECK_THROWS_WITH(load_tensors(path),
                    Contains("nn::load_tensors: ") && Contains("empty.safetensors: tensor \"e\" has shape [0, "
                                                               "4611686018427387904, 4611686018427387904], whose "
                                                               "non-zero dimensions multiply to over 2^63 - 1"));
  f.tensors.erase(f.tensors.begin());
  save_safetensors(path, f);
  CHECK(load_tensors(path).at("ok").shape() == Shape{0, std::int64_t{1} << 61, 2});
}

namespace {

// Dense(2, 1) with a persistent buffer "offset" (added to the output) and a non-persistent one.
class WithBuffers : public Module {
 public:
  explicit WithBuffers(std::uint64_t seed) : Module("WithBuffers") {
    dense_ = register_module("dense", std::make_shared<Dense>(DenseOptions(2, 1).seed(seed)));
    offset_ = register_buffer("offset", full({1}, static_cast<double>(seed)));
    scratch_ = register_buffer("scratch", full({1}, static_cast<double>(seed)), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override { return dense_->forward(x) + offset_; }
  const Tensor& offset() const { return offset_; }
  const Tensor& scratch() const { return scratch_; }

 private:
  std::shared_ptr<Dense> dense_;
  Tensor offset_, scratch_;
};

}  // namespace

TEST_CASE("serialize: persistent buffers are saved and loaded with the parameters, as torch's state_dict") {
  TempDir dir;
  const fs::path path = dir.path() / "buffers.safetensors";
  WithBuffers trained(5);
  save(trained, path);
  const StFile file = load_safetensors(path);
  std::vector<std::string> names;
  for (const StEntry& e : file.tensors) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"dense.bias", "dense.weight", "offset"});  // not "scratch"

  WithBuffers fresh(9);
  const Tensor offset = fresh.offset();  // a handle held outside the module sees the loaded value
  load(fresh, path);
  CHECK(offset.item() == 5.0);
  CHECK(fresh.scratch().item() == 9.0);  // not in the file, left as it was
  const Tensor x = from_vector({0.5, -1.5}, {1, 2});
  CHECK(fresh.forward(x).item() == trained.forward(x).item());

  // A file without the buffer is refused, naming it, and changes nothing.
  auto plain = std::make_shared<Sequential>();
  plain->push_back("dense", std::make_shared<Dense>(DenseOptions(2, 1).seed(5)));
  save(*plain, path);
  const double before = fresh.offset().item();
  CHECK_THROWS_WITH(load(fresh, path), Contains("missing \"offset\""));
  CHECK(fresh.offset().item() == before);
}

TEST_CASE("serialize: state_dict and load_state_dict keep the best model in memory, with load's checks") {
  WithBuffers model(3);
  const auto best = state_dict(model);
  std::vector<std::string> names;
  for (const auto& [name, t] : best) names.push_back(name);
  CHECK(names == std::vector<std::string>{"dense.bias", "dense.weight", "offset"});
  const auto best_values = values_of(model);
  // Training moves on (a step of plain gradient descent); the snapshot is a copy and stays.
  sum(model.forward(from_vector({1.0, 2.0}, {1, 2}))).backward();
  {
    NoGradGuard no_grad;
    for (Tensor& p : model.parameters()) p -= p.grad() * 0.5;
    Tensor offset = model.offset();
    offset += 1.0;
  }
  CHECK(values_of(model) != best_values);
  CHECK(best.at("offset").item() == 3.0);
  load_state_dict(model, best);
  CHECK(values_of(model) == best_values);
  CHECK(model.offset().item() == 3.0);

  // Every problem at once, and nothing changes.
  auto wrong = best;
  wrong.erase("offset");
  wrong["dense.weight"] = zeros({2, 1});
  wrong["extra"] = zeros({1});
  const auto before = snapshot(model);
  CHECK_THROWS_WITH(load_state_dict(model, wrong),
                    Contains("nn::load_state_dict: nothing was loaded: ") &&
                        Contains("\"dense.weight\": shape [2, 1] in the file vs [1, 2] in the model") &&
                        Contains("missing \"offset\"") && Contains("unexpected \"extra\""));
  CHECK(snapshot(model) == before);
  wrong = best;
  wrong["extra"] = zeros({1});
  load_state_dict(model, wrong, {.strict = false});
  CHECK(values_of(model) == best_values);
  wrong["dense.bias"] = Tensor();
  CHECK_THROWS_WITH(load_state_dict(model, wrong), Contains("nn::load_state_dict: the tensor \"dense.bias\" is undefined"));
}
