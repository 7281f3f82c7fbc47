#pragma once
// Parameter initialisers: the distributions a layer's weights start from, seeded and reproducible.
//
// An Init is a value that describes a distribution; apply() fills a tensor in place from a
// chainrule::Generator, so the same seed gives the same weights on every platform. Layers take an
// Init in their options (DenseOptions(2, 3).init(Init::xavier_uniform())) and a Generator (or use
// default_generator(), seeded with manual_seed()).
//
// Fans, for a weight of shape [out, in, k...] (torch.nn.Linear's layout and PyTorch's
// _calculate_fan_in_and_fan_out): fan_in = in * prod(k), fan_out = out * prod(k). A 1-D tensor (a
// bias) has no fans of its own; a layer passes its weight's fans (apply(t, gen, fans)).
//
//   Generator gen(42);
//   Tensor w = zeros({3, 2}, DType::float64);
//   Init::kaiming_uniform().apply(w, gen);              // U(-sqrt(6/2), sqrt(6/2))
//   set_values(w, {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});  // the lecture's exact weights
#include <cstdint>
#include <optional>
#include <string>

#include "autograd/tensor.h"

namespace chainrule::nn {

// The nonlinearity a layer's output feeds, for calculate_gain.
enum class Nonlinearity { Linear, Sigmoid, Tanh, ReLU, LeakyReLU };
// torch's name of it: "linear", "sigmoid", "tanh", "relu", "leaky_relu".
const char* nonlinearity_name(Nonlinearity n);
// Which fan Kaiming initialisation preserves: the forward pass's variance (FanIn, PyTorch's
// default) or the backward pass's (FanOut).
enum class FanMode { FanIn, FanOut };

// PyTorch's torch.nn.init.calculate_gain: Linear and Sigmoid 1, Tanh 5/3, ReLU sqrt(2),
// LeakyReLU sqrt(2 / (1 + slope^2)) with slope = `param` (0.01 as PyTorch's default).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);

struct Fans {
  int64_t fan_in = 0;
  int64_t fan_out = 0;
};
// The fans of a weight shape [out, in, k...]; std::invalid_argument for fewer than 2 dims.
Fans compute_fans(const Shape& shape);

// The generator layers use when none is given. Seed 0 at program start; not thread-safe.
Generator& default_generator();
// Reseeds default_generator() (as torch.manual_seed): the layers built afterwards are reproducible.
void manual_seed(uint64_t seed);

class Init {
 public:
  enum class Kind { Uniform, Normal, Constant, Values, XavierUniform, XavierNormal, KaimingUniform,
                    KaimingNormal, TorchDefault, TruncNormal, Orthogonal };

  // U(a, b), a <= b. Init::uniform(-1, 1) is the lecture's "random values between -1 and 1".
  static Init uniform(double a, double b);
  // N(mean, stddev^2), stddev >= 0.
  static Init normal(double mean, double stddev);
  // Every element = value (finite, and finite in the tensor's dtype when applied).
  static Init constant(double value);
  static Init zeros() { return constant(0.0); }
  // Exactly these values; the nested list's shape must equal the tensor's.
  //   Init::values({{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}})
  static Init values(NestedList values);
  // Xavier/Glorot (Glorot & Bengio 2010), as torch.nn.init.xavier_uniform_ / xavier_normal_:
  //   uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
  //   normal:  N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
  static Init xavier_uniform(double gain = 1.0);
  static Init xavier_normal(double gain = 1.0);
  // He/Kaiming (He et al. 2015), as torch.nn.init.kaiming_uniform_ / kaiming_normal_ with
  // gain = calculate_gain(nonlinearity, negative_slope) and fan = fan_in (or fan_out):
  //   uniform: U(-bound, bound), bound = gain * sqrt(3 / fan)
  //   normal:  N(0, std^2), std = gain / sqrt(fan)
  static Init kaiming_uniform(Nonlinearity nonlinearity = Nonlinearity::ReLU, FanMode mode = FanMode::FanIn,
                              double negative_slope = 0.0);
  static Init kaiming_normal(Nonlinearity nonlinearity = Nonlinearity::ReLU, FanMode mode = FanMode::FanIn,
                             double negative_slope = 0.0);
  // torch.nn.Linear's default for its weight and its bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // the weight's fan_in (what kaiming_uniform_(a = sqrt(5)) works out to).
  static Init torch_default();
  // torch.nn.init.trunc_normal_: N(mean, std^2) restricted to [a, b] (absolute bounds, torch's
  // defaults -2 and 2), drawn by redrawing a value outside them. std > 0, a < b, all finite, and at
  // least 1e-4 of the normal's mass inside [a, b] (else std::invalid_argument: the redraws would
  // run for ever). The initialiser of ViT's and BERT's weights (std 0.02).
  static Init trunc_normal(double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0);
  // torch.nn.init.orthogonal_ (Saxe et al. 2013): the tensor read as a matrix [rows, numel / rows]
  // becomes gain * a random matrix with orthonormal rows (rows <= columns) or columns, the Q of
  // the QR decomposition of a standard normal matrix, R's diagonal made positive (so the
  // distribution is uniform, Haar). Tensors of 2 or more dims (std::invalid_argument otherwise);
  // gain finite and > 0. Recurrent layers' weight_hh often start from it.
  static Init orthogonal(double gain = 1.0);

  // Fills the tensor `t` names in place (values drawn in row-major order), whatever its
  // requires_grad; bumps its version. The fans come from t's shape (std::invalid_argument for a fan-based Init on < 2 dims).
  void apply(Tensor t, Generator& gen) const;
  // The same with the fans given: a layer initialises its bias with its weight's fans.
  void apply(Tensor t, Generator& gen, Fans fans) const;

  Kind kind() const { return kind_; }
  // "uniform(-1, 1)", "xavier_uniform(gain=1)", ...
  std::string to_string() const;

 private:
  Init(Kind kind, double a, double b) : kind_(kind), a_(a), b_(b) {}
  Kind kind_;
  double a_ = 0, b_ = 0;  // the kind's two numbers (bounds, mean/std, gain, slope)
  double c_ = 0, d_ = 0;  // trunc_normal's bounds
  Nonlinearity nonlinearity_ = Nonlinearity::ReLU;
  FanMode mode_ = FanMode::FanIn;
  NestedList values_ = NestedList(0.0);
};

// Sets the tensor `param` names to exactly `values` (nested like the tensor's shape, which it must match:
// std::invalid_argument naming both shapes). Works on parameters that require grad (no recording).
//   set_values(dense->weight(), {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});
void set_values(Tensor param, const NestedList& values);

// WeightBiasOptions::init_weight_bias's work, for any layer's options: weight_init on weight and
// bias_init on bias (when defined) with the weight's fans, from Generator(*seed) or else gen.
void init_weight_bias(const Init& weight_init, const Init& bias_init, const std::optional<uint64_t>& seed,
                      const Tensor& weight, const Tensor& bias, Generator& gen);

// The options of a layer with a weight and a bias (Dense, Conv2d), as a base of its options
// struct (Self), so that each setter returns the layer's own options for chaining.
template <class Self>
struct WeightBiasOptions {
  // Whether the layer adds a bias (default true).
  Self& bias(bool on) { bias_ = on; return self(); }
  // The weight's initialiser (default Init::torch_default(): U(+-1/sqrt(fan_in)), torch's for
  // Linear and Conv2d).
  Self& init(Init init) { init_ = std::move(init); return self(); }
  // The bias's initialiser (default Init::torch_default() with the weight's fan_in, as torch).
  // Fan-based initialisers use the weight's fans.
  Self& bias_init(Init init) { bias_init_ = std::move(init); return self(); }
  // The parameters' dtype (default float32).
  Self& dtype(DType d) { dtype_ = d; return self(); }
  // A seed for the layer's own Generator; without one, the layer draws from the Generator passed
  // to its constructor, or from default_generator().
  Self& seed(uint64_t s) { seed_ = s; return self(); }

  bool bias() const { return bias_; }
  const Init& init() const { return init_; }
  const Init& bias_init() const { return bias_init_; }
  DType dtype() const { return dtype_; }
  const std::optional<uint64_t>& seed() const { return seed_; }

  // Fills a layer's weight, then its bias if defined (undefined: no bias), from init() and
  // bias_init(), the bias with the weight's fans (compute_fans(weight.shape()), as torch), drawing
  // from a Generator seeded with seed() if set, else from gen. Every layer with these options
  // draws its parameters this way, so one seed gives the same weights in Dense and Conv2d.
  //   options.init_weight_bias(weight_, bias_, gen);
  void init_weight_bias(const Tensor& weight, const Tensor& bias, Generator& gen) const {
    nn::init_weight_bias(init_, bias_init_, seed_, weight, bias, gen);
  }

 private:
  Self& self() { return static_cast<Self&>(*this); }
  bool bias_ = true;
  Init init_ = Init::torch_default();
  Init bias_init_ = Init::torch_default();
  DType dtype_ = DType::float32;
  std::optional<uint64_t> seed_;
};

}  // namespace chainrule::nn
