// The activations added after GELU (nn/activation.h): values and gradients against LibTorch 1.13,
// kinks included, finite-difference checks of first and second order away from the kinks, float32,
// PReLU's parameter, printing and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/activation.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;

namespace {

using Activation = std::function<Tensor(const Tensor&)>;

// The fixtures below come from LibTorch 1.13 (libtorch 1.13 as installed here, CPU), by a throwaway
// program that is not part of the repository: for each op, x = kXs in float64 with requires_grad,
// y = op(x), sum(y * weights(20)).backward(), and y and x.grad printed with %.17g; then the op on
// {NaN, 1}, sum(y).backward(), and y[0] and x.grad[0]. The ops were torch::nn::functional's relu6,
// hardtanh (default and min_val -0.5, max_val 3), softsign, tanhshrink, softmin, and torch::'s
// hardsigmoid, hardswish, mish, selu, celu (alpha 1 and 0.5), prelu (weight {0.25}), log_sigmoid,
// threshold(x, 0.5, -2), hardshrink and softshrink (lambd 0.5 and 1), glu.
const std::vector<double> kXs = {-1000, -30, -6, -3, -2.5, -1, -0.7, -0.5, -0.2, 0,
                                 0.3,   0.5, 1,  1.7, 3,  4.5, 6, 7.5, 30, 1000};

// (-1)^i (0.5 + 0.125 i): distinct, so that a gradient routed to the wrong element shows.
Tensor weights(const Shape& shape) {
  std::vector<double> w(shape.numel());
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = (i % 2 ? -1.0 : 1.0) * (0.5 + 0.125 * double(i));
  return from_vector(w, shape, DType::float64);
}

struct Fixture {
  const char* name;
  Activation f;
  std::vector<double> y, grad;  // at kXs; grad = d sum(y * weights) / dx
  double nan_y, nan_grad;       // at NaN (seed 1)
};

const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> all = {
    {"relu6", [](const Tensor& x) { return nn::relu6(x); },
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.29999999999999999, 0.5, 1, 1.7, 3, 4.5, 6, 6, 6, 6},
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.75, -1.875, 2, -2.125, 2.25, -2.375, 0, 0, 0, 0},
     NAN, 1},
    {"hardtanh", [](const Tensor& x) { return nn::hardtanh(x); },
     {-1, -1, -1, -1, -1, -1, -0.69999999999999996, -0.5, -0.20000000000000001, 0, 0.29999999999999999, 0.5, 1, 1,
      1, 1, 1, 1, 1, 1},
     {0, 0, 0, 0, 0, 0, 1.25, -1.375, 1.5, -1.625, 1.75, -1.875, 0, 0, 0, 0, 0, 0, 0, 0},
     NAN, 1},
    {"hardtanh(-0.5,3)", [](const Tensor& x) { return nn::hardtanh(x, -0.5, 3); },
     {-0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.20000000000000001, 0, 0.29999999999999999, 0.5, 1, 1.7, 3,
      3, 3, 3, 3, 3},
     {0, 0, 0, 0, 0, 0, 0, 0, 1.5, -1.625, 1.75, -1.875, 2, -2.125, 0, 0, 0, 0, 0, 0},
     NAN, 1},
    {"hardsigmoid", [](const Tensor& x) { return nn::hardsigmoid(x); },
     {0, 0, 0, 0, 0.083333333333333329, 0.33333333333333331, 0.3833333333333333, 0.41666666666666669,
      0.46666666666666662, 0.5, 0.54999999999999993, 0.58333333333333337, 0.66666666666666663, 0.78333333333333333,
      1, 1, 1, 1, 1, 1},
     {0, 0, 0, 0, 0.1666666716337204, -0.18750000558793545, 0.2083333395421505, -0.22916667349636555,
      0.2500000074505806, -0.27083334140479565, 0.2916666753590107, -0.31250000931322575, 0.3333333432674408,
      -0.35416667722165585, 0, 0, 0, 0, 0, 0},
     NAN, 0},
    {"hardswish", [](const Tensor& x) { return nn::hardswish(x); },
     {-0, -0, -0, -0, -0.20833333333333334, -0.33333333333333331, -0.26833333333333331, -0.20833333333333334,
      -0.093333333333333324, 0, 0.16499999999999998, 0.29166666666666669, 0.66666666666666663, 1.3316666666666668,
      3, 4.5, 6, 7.5, 30, 1000},
     {0, 0, 0, 0.4375, -0.33333333333333337, -0.18750000000000003, 0.33333333333333337, -0.45833333333333337,
      0.65000000000000002, -0.8125, 1.05, -1.25, 1.6666666666666665, -2.2666666666666666, 2.25, -2.375, 2.5,
      -2.625, 2.75, -2.875},
     NAN, 1},
    {"mish", [](const Tensor& x) { return nn::mish(x); },
     {-0, -2.8072868906519209e-12, -0.014854080479424991, -0.14564746127562461, -0.19681620390653332,
      -0.30340146137410895, -0.26787023479550098, -0.22074377465173001, -0.1071447808683571, 0,
      0.20800137234811503, 0.37524521130489513, 0.86509838826731034, 1.6207680739755406, 2.9865350049679575,
      4.498913714953316, 5.9999266340652522, 7.4999954165380789, 30, 1000},
     {0, 1.69606916310212e-12, -0.0092699759488359817, 0.08171897521578074, -0.10974357275018568,
      -0.066618850362069396, 0.23052009157097741, -0.39807718213107934, 0.70729536227011414, -0.97499999999999998,
      1.3699477742144781, -1.6620457037957388, 2.0980724401995845, -2.304046796383258, 2.2974905495912479,
      -2.3795292299009181, 2.5003353512655253, -2.6250224456544542, 2.75, -2.875},
     NAN, NAN},
    {"selu", [](const Tensor& x) { return nn::selu(x); },
     {-1.7580993408473766, -1.7580993408472121, -1.7537414482794556, -1.6705687287671118, -1.6137857588732423,
      -1.1113307378125625, -0.88505304557720521, -0.69175818780287135, -0.31868934352950051, 0,
      0.31521029620664415, 0.52535049367774023, 1.0507009873554805, 1.7861916785043168, 3.1521029620664414,
      4.7281544430996618, 6.3042059241328827, 7.8802574051661036, 31.521029620664414, 1050.7009873554805},
     {0, -1.0282269233385114e-13, 0.0032684194259408436, -0.076589285570231772, 0.1443135819741343,
      -0.72761467841416583, 1.0913078690877143, -1.4662190854361947, 2.1591149959768141, -2.856911428876987,
      1.8387267278720909, -1.9700643512915259, 2.1014019747109609, -2.2327395981303959, 2.3640772215498309,
      -2.4954148449692659, 2.6267524683887009, -2.7580900918081364, 2.8894277152275714, -3.0207653386470064},
     NAN, 1.0507009873554805},
    {"celu", [](const Tensor& x) { return nn::celu(x); },
     {-1, -0.99999999999990641, -0.99752124782333362, -0.95021293163213605, -0.91791500137610116,
      -0.63212055882855767, -0.50341469620859047, -0.39346934028736658, -0.18126924692201818, 0,
      0.29999999999999999, 0.5, 1, 1.7, 3, 4.5, 6, 7.5, 30, 1000},
     {0, -5.8485143555251091e-14, 0.0018590641324997689, -0.043563684821880951, 0.0820849986238988,
      -0.41386437131787263, 0.62073162973926188, -0.83397965710487099, 1.2280961296169728, -1.625, 1.75, -1.875, 2,
      -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     NAN, 1},
    {"celu(0.5)", [](const Tensor& x) { return nn::celu(x, 0.5); },
     {-0.5, -0.5, -0.49999692789382333, -0.49876062391166681, -0.49663102650045726, -0.43233235838169365,
      -0.37670151802919677, -0.31606027941427883, -0.16483997698218039, 0, 0.29999999999999999, 0.5, 1, 1.7, 3,
      4.5, 6, 7.5, 30, 1000},
     {0, -5.4728192266853247e-27, 4.6081592649961571e-06, -0.0021689081545830636, 0.006737946999085467,
      -0.1522521936411893, 0.30824620492700811, -0.50583423161073315, 1.0054800690534589, -1.625, 1.75, -1.875, 2,
      -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     NAN, 1},
    {"prelu", [](const Tensor& x) { return nn::prelu(x, tensor({0.25}, DType::float64)); },
     {-250, -7.5, -1.5, -0.75, -0.625, -0.25, -0.17499999999999999, -0.125, -0.050000000000000003, 0,
      0.29999999999999999, 0.5, 1, 1.7, 3, 4.5, 6, 7.5, 30, 1000},
     {0.125, -0.15625, 0.1875, -0.21875, 0.25, -0.28125, 0.3125, -0.34375, 0.375, -0.40625, 1.75, -1.875, 2,
      -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     NAN, 0.25},
    {"softsign", [](const Tensor& x) { return nn::softsign(x); },
     {-0.99900099900099903, -0.967741935483871, -0.8571428571428571, -0.75, -0.7142857142857143, -0.5,
      -0.41176470588235292, -0.33333333333333331, -0.16666666666666669, 0, 0.23076923076923075,
      0.33333333333333331, 0.5, 0.62962962962962954, 0.75, 0.81818181818181823, 0.8571428571428571,
      0.88235294117647056, 0.967741935483871, 0.99900099900099903},
     {4.9900149800251054e-07, -0.00065036420395421166, 0.015306122448979595, -0.0546875, 0.081632653061224469,
      -0.28125, 0.4325259515570935, -0.61111111111111116, 1.0416666666666665, -1.625, 1.0355029585798816,
      -0.83333333333333337, 0.5, -0.29149519890260639, 0.140625, -0.078512396694214892, 0.051020408163265307,
      -0.036332179930795849, 0.0028616024973985438, -2.8692586135142459e-06},
     NAN, NAN},
    {"tanhshrink", [](const Tensor& x) { return nn::tanhshrink(x); },
     {-999, -29, -5.000012288349204, -2.0049452463132695, -1.5133857018485697, -0.23840584404423515,
      -0.09563222288283646, -0.037882842739990263, -0.002624679775096006, 0, 0.0086873875484090868,
      0.037882842739990263, 0.23840584404423515, 0.76459092939690099, 2.0049452463132695, 3.5002467891519724,
      5.000012288349204, 6.5000006118044542, 29, 999},
     {0.5, -0.625, 0.74998156758944601, -0.86636721748023982, 0.97340777331683948, -0.65252886568422053,
      0.45657551252192674, -0.29363436717184976, 0.058435525550825096, 0, 0.14851031680339899,
      -0.40041050068888606, 1.1600513167719477, -1.859354024903926, 2.2278014163777597, -2.3738278961772337,
      2.4999385586314866, -2.6249967880275995, 2.75, -2.875},
     NAN, NAN},
    {"logsigmoid", [](const Tensor& x) { return nn::logsigmoid(x); },
     {-1000, -30.000000000000092, -6.0024756851377301, -3.0485873515737421, -2.5788897342925496,
      -1.3132616875182228, -1.1031860488854579, -0.97407698418010669, -0.79813886938159184, -0.69314718055994529,
      -0.55435524446852713, -0.47407698418010669, -0.31326168751822286, -0.16778602938626594,
      -0.048587351573742062, -0.011047744848593817, -0.0024756851377304495, -0.0005529314753607964,
      -9.3576229688397368e-14, 0},
     {0.5, -0.62499999999994149, 0.74814553263252392, -0.83350236096962904, 0.92414181997875644,
      -0.82244090095875555, 0.83523471521020753, -0.85588158040254991, 0.82475099596871693, -0.8125,
      0.74472559557959683, -0.70788875399652273, 0.53788284273999021, -0.32823868830251124, 0.10670821464952528,
      -0.026093988747658801, 0.0061815578915869369, -0.0014510439219244488, 2.5733463164308075e-13, -0},
     NAN, NAN},
    {"threshold(0.5,-2)", [](const Tensor& x) { return nn::threshold(x, 0.5, -2); },
     {-2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, 1, 1.7, 3, 4.5, 6, 7.5, 30, 1000},
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     NAN, 1},
    {"hardshrink", [](const Tensor& x) { return nn::hardshrink(x); },
     {-1000, -30, -6, -3, -2.5, -1, -0.69999999999999996, 0, 0, 0, 0, 0, 1, 1.7, 3, 4.5, 6, 7.5, 30, 1000},
     {0.5, -0.625, 0.75, -0.875, 1, -1.125, 1.25, 0, 0, 0, 0, 0, 2, -2.125, 2.25, -2.375, 2.5, -2.625, 2.75,
      -2.875},
     NAN, 1},
    {"softshrink", [](const Tensor& x) { return nn::softshrink(x); },
     {-999.5, -29.5, -5.5, -2.5, -2, -0.5, -0.19999999999999996, 0, 0, 0, 0, 0, 0.5, 1.2, 2.5, 4, 5.5, 7, 29.5,
      999.5},
     {0.5, -0.625, 0.75, -0.875, 1, -1.125, 1.25, 0, 0, 0, 0, 0, 2, -2.125, 2.25, -2.375, 2.5, -2.625, 2.75,
      -2.875},
     0, 1},
    {"hardshrink(1)", [](const Tensor& x) { return nn::hardshrink(x, 1); },
     {-1000, -30, -6, -3, -2.5, 0, 0, 0, 0, 0, 0, 0, 0, 1.7, 3, 4.5, 6, 7.5, 30, 1000},
     {0.5, -0.625, 0.75, -0.875, 1, 0, 0, 0, 0, 0, 0, 0, 0, -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     NAN, 1},
    {"softshrink(1)", [](const Tensor& x) { return nn::softshrink(x, 1); },
     {-999, -29, -5, -2, -1.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.69999999999999996, 2, 3.5, 5, 6.5, 29, 999},
     {0.5, -0.625, 0.75, -0.875, 1, 0, 0, 0, 0, 0, 0, 0, 0, -2.125, 2.25, -2.375, 2.5, -2.625, 2.75, -2.875},
     0, 1},
  };
  return all;
}

Tensor leaf(const std::vector<double>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions(DType::float64).requires_grad(true));
}

// value == expected to rounding (relative 1e-12), or both tiny: Mish and LogSigmoid compute
// ln(1 + e^z) as log(exp(z) + 1) (there is no log1p op), exact to ~1e-16 absolute, not relative.
void check_close(const std::vector<double>& got, const std::vector<double>& expected, double rtol = 1e-12) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(expected[i]).epsilon(rtol).margin(1e-14));
  }
}

}  // namespace

TEST_CASE("nn: the added activations match LibTorch 1.13's values and gradients, kinks included", "[activation]") {
  for (const Fixture& c : fixtures()) {
    INFO(c.name);
    const Tensor x = leaf(kXs, {20});
    const Tensor y = c.f(x);
    sum(y * weights({20})).backward();
    check_close(y.to_vector(), c.y);
    REQUIRE(x.grad().defined());
    // LibTorch 1.13's float64 hardsigmoid backward multiplies by 1/6 rounded to float32
    // (0.16666667163); chainrule's by 1/6.
    check_close(x.grad().to_vector(), c.grad, std::string(c.name) == "hardsigmoid" ? 1e-7 : 1e-12);
    // NaN: the value and the gradient PyTorch gives, except Softshrink's value (PyTorch 1.13: 0; here
    // NaN stays NaN, as through every other activation).
    const Tensor nan = leaf({NAN, 1.0}, {2});
    const Tensor yn = c.f(nan);
    sum(yn).backward();
    const double expected_nan_y = std::string(c.name).rfind("softshrink", 0) == 0 ? NAN : c.nan_y;
    if (std::isnan(expected_nan_y))
      CHECK(std::isnan(yn.to_vector()[0]));
    else
      CHECK(yn.to_vector()[0] == expected_nan_y);
    if (std::isnan(c.nan_grad))
      CHECK(std::isnan(nan.grad().to_vector()[0]));
    else
      CHECK(nan.grad().to_vector()[0] == Approx(c.nan_grad).epsilon(1e-12));
  }
}

TEST_CASE("nn: PReLU per channel, GLU and Softmin match LibTorch 1.13", "[activation]") {
  // The same program: torch::prelu(x [2, 3, 2], weight {0.25, -0.5, 2}), torch::glu(x [2, 4], dim)
  // and F::softmin(x [2, 4], dim), with sum(y * weights(y's shape)).backward().
  {
    const Tensor x = leaf({-2, 0, 1.5, -0.5, 3, -1, 0.25, -4, -3, 2, -0.1, 0.7}, {2, 3, 2});
    const Tensor w = leaf({0.25, -0.5, 2.0}, {3});
    const Tensor y = nn::prelu(x, w);
    sum(y * weights({2, 3, 2})).backward();
    check_close(y.to_vector(), {-0.5, 0, 1.5, 0.25, 3, -2, 0.25, -1, 1.5, 2, -0.20000000000000001,
                0.69999999999999996});
    check_close(x.grad().to_vector(), {0.125, -0.15625, 0.75, 0.4375, 1, -2.25, 1.25, -0.34375,
                -0.75, -1.625, 3.5, -1.875});
    check_close(w.grad().to_vector(), {4.5, -4.0625, 0.94999999999999996});
  }
  const std::vector<double> v = {-1.5, 0.5, 2, -0.3, 0.8, -2.2, 1.1, 3};
  struct Case {
    const char* name;
    Activation f;
    Shape shape;
    std::vector<double> y, grad;
  };
  const std::vector<Case> cases = {
      {"glu(-1)", [](const Tensor& x) { return nn::glu(x); }, {2, 2},
       {-1.3211956169668235, 0.21277874159417051, 0.60020808447609419, -2.0956630790093538},
       {0.44039853898894116, -0.26597342699271315, -0.078745189052629963, -0.07639322240335808,
        0.56269507919633832, -0.83350236096962915, 0.11242192772851234, 0.086965069982005594}},
      {"glu(0)", [](const Tensor& x) { return nn::glu(x, 0); }, {1, 4},
       {-1.0349617216914186, 0.049875244559842567, 1.5005202111902354, -0.28577223804673002},
       {0.34498724056380625, -0.062344055699803211, 0.56269507919633832, -0.83350236096962915,
        -0.16043227239022079, -0.028062602825021474, 0.28105481932128085, 0.011858873179364399}},
      {"softmin(1)", [](const Tensor& x) { return nn::Softmin(1).forward(x); }, {2, 4},
       {0.68179019189597667, 0.092270268728186527, 0.020588279838258915, 0.20535125953757777,
        0.045584755610678512, 0.91559429195276942, 0.033770017541713798, 0.0050509348948382981},
       {-0.25977226557339328, 0.068647699180818089, -0.012991512665568833, 0.20411607905814397,
        -0.088853410707764813, 0.16096940887766642, -0.074266730007456663, 0.0021507318375550023}},
      {"softmin(0)", [](const Tensor& x) { return nn::Softmin(0).forward(x); }, {2, 4},
       {0.90887703898514383, 0.062973356056996485, 0.28905049737499605, 0.96442881072736386,
        0.091122961014856146, 0.9370266439430035, 0.71094950262500389, 0.035571189272636181},
       {0.041409783495370535, -0.029503856241957609, 0.10275015367113169, -0.017152939883183272,
        -0.041409783495370583, 0.029503856241957723, -0.10275015367113181, 0.017152939883183234}}};
  for (const Case& c : cases) {
    INFO(c.name);
    const Tensor x = leaf(v, {2, 4});
    const Tensor y = c.f(x);
    CHECK(y.shape() == c.shape);
    sum(y * weights(c.shape)).backward();
    check_close(y.to_vector(), c.y);
    check_close(x.grad().to_vector(), c.grad);
  }
}

TEST_CASE("nn: the added activations pass the finite-difference checks, twice, away from their kinks", "[activation]") {
  // No element within 0.05 of a kink: 0, ±0.5, ±1, ±3, 6 and the options' bounds below.
  const Tensor x = leaf({-4.1, -2.2, -0.8, -0.3, 0.2, 0.7, 1.6, 2.4, 3.7, 5.2, 6.6, -1.4}, {3, 4});
  const Tensor w = weights({3, 4});
  using V = const std::vector<Tensor>&;
  const std::vector<std::pair<const char*, Activation>> cases = {
      {"relu6", [](const Tensor& t) { return nn::relu6(t); }},
      {"hardtanh", [](const Tensor& t) { return nn::hardtanh(t, -2, 2.1); }},
      {"hardsigmoid", [](const Tensor& t) { return nn::hardsigmoid(t); }},
      {"hardswish", [](const Tensor& t) { return nn::hardswish(t); }},
      {"mish", [](const Tensor& t) { return nn::mish(t); }},
      {"selu", [](const Tensor& t) { return nn::selu(t); }},
      {"celu", [](const Tensor& t) { return nn::celu(t, 0.7); }},
      {"softsign", [](const Tensor& t) { return nn::softsign(t); }},
      {"tanhshrink", [](const Tensor& t) { return nn::tanhshrink(t); }},
      {"logsigmoid", [](const Tensor& t) { return nn::logsigmoid(t); }},
      {"softmin", [](const Tensor& t) { return nn::softmin(t, 1); }},
      {"threshold", [](const Tensor& t) { return nn::threshold(t, 1.2, -3); }},
      {"glu", [](const Tensor& t) { return nn::glu(t, 1); }},
      {"hardshrink", [](const Tensor& t) { return nn::hardshrink(t, 0.4); }},
      {"softshrink", [](const Tensor& t) { return nn::softshrink(t, 0.4); }}};
  for (const auto& [name, f] : cases) {
    INFO(name);
    const auto g = [f = f](V in) {
      const Tensor y = f(in[0]);
      return sum(y * weights(y.shape()));
    };
    testing::check_first_and_second_order(g, {x});
  }
  // PReLU in both its input and its slopes (one per channel: dim 1 of [3, 4] has 4).
  const Tensor a = leaf({0.25, -0.5, 2.0, 0.1}, {4});
  testing::check_first_and_second_order([&](V in) { return sum(nn::prelu(in[0], in[1]) * w); }, {x, a});
  const Tensor a1 = leaf({0.3}, {1});
  testing::check_first_and_second_order([&](V in) { return sum(nn::prelu(in[0], in[1]) * w); }, {x, a1});
}

TEST_CASE("nn: the added activations work in float32", "[activation]") {
  const std::vector<double> v = {-7.0, -3.5, -2.0, -0.8, -0.25, 0.3, 0.9, 1.6, 2.7, 4.0, 6.5, 25.0};
  const std::vector<std::pair<const char*, Activation>> cases = {
      {"relu6", [](const Tensor& t) { return nn::ReLU6().forward(t); }},
      {"hardtanh", [](const Tensor& t) { return nn::Hardtanh().forward(t); }},
      {"hardsigmoid", [](const Tensor& t) { return nn::Hardsigmoid().forward(t); }},
      {"hardswish", [](const Tensor& t) { return nn::Hardswish().forward(t); }},
      {"mish", [](const Tensor& t) { return nn::Mish().forward(t); }},
      {"selu", [](const Tensor& t) { return nn::SELU().forward(t); }},
      {"celu", [](const Tensor& t) { return nn::CELU(2).forward(t); }},
      {"prelu", [](const Tensor& t) { return nn::prelu(t, full({1}, 0.2, t.dtype())); }},
      {"softsign", [](const Tensor& t) { return nn::Softsign().forward(t); }},
      {"tanhshrink", [](const Tensor& t) { return nn::Tanhshrink().forward(t); }},
      {"logsigmoid", [](const Tensor& t) { return nn::LogSigmoid().forward(t); }},
      {"softmin", [](const Tensor& t) { return nn::Softmin(1).forward(t); }},
      {"threshold", [](const Tensor& t) { return nn::Threshold(0.1, 20).forward(t); }},
      {"glu", [](const Tensor& t) { return nn::GLU().forward(t); }},
      {"hardshrink", [](const Tensor& t) { return nn::Hardshrink().forward(t); }},
      {"softshrink", [](const Tensor& t) { return nn::Softshrink().forward(t); }}};
  for (const auto& [name, f] : cases) {
    INFO(name);
    const Tensor x32 = from_vector(v, {3, 4}, TensorOptions(DType::float32).requires_grad(true));
    const Tensor x64 = leaf(v, {3, 4});
    const Tensor y32 = f(x32), y64 = f(x64);
    REQUIRE(y32.dtype() == DType::float32);
    sum(y32 * weights(y32.shape()).to(DType::float32)).backward();
    sum(y64 * weights(y64.shape())).backward();
    REQUIRE(x32.grad().dtype() == DType::float32);
    const std::vector<double> a = y32.to_vector(), b = y64.to_vector(), ga = x32.grad().to_vector(),
                              gb = x64.grad().to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-5).margin(1e-6));
    for (std::size_t i = 0; i < ga.size(); ++i) CHECK(ga[i] == Approx(gb[i]).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("nn: PReLU registers its slopes as weight and trains them", "[activation]") {
  nn::PReLU one;
  const auto named = one.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == Shape{1});
  CHECK(named[0].second.item() == 0.25);
  CHECK(named[0].second.dtype() == DType::float32);
  CHECK(one.weight().requires_grad());

  // One slope per channel of [N, C, H, W]: a negative input in channel c is scaled by slope c, and
  // slope c gets the sum of its channel's negative inputs (times the incoming gradient).
  nn::PReLU act(3, 0.5, DType::float64);
  CHECK(act.parameters().size() == 1);
  CHECK(act.weight().shape() == Shape{3});
  CHECK(act.weight().to_vector() == std::vector<double>{0.5, 0.5, 0.5});
  const Tensor x = from_vector({-1, 2, -3, 4, 5, -6, -7, 8, 1, -2, 3, -4}, {2, 3, 2, 1}, DType::float64);
  const Tensor y = act(x);
  CHECK(y.shape() == Shape{2, 3, 2, 1});
  CHECK(y.to_vector() == std::vector<double>{-0.5, 2, -1.5, 4, 5, -3, -3.5, 8, 1, -1, 3, -2});
  sum(y).backward();
  REQUIRE(act.weight().grad().defined());
  CHECK(act.weight().grad().to_vector() == std::vector<double>{-1 - 7, -3 - 2, -6 - 4});
  // A gradient-descent step moves the slopes.
  {
    NoGradGuard no_grad;
    Tensor w = act.weight();  // the same tensor (a handle)
    w.add_(w.grad(), -0.1);
  }
  const std::vector<double> stepped = act.weight().to_vector();
  CHECK(stepped[0] == Approx(1.3));
  CHECK(stepped[1] == Approx(1.0));
  CHECK(stepped[2] == Approx(1.5));
  act.zero_grad();
  CHECK_FALSE(act.weight().grad().defined());

  // One slope serves any shape, a 0-d input included (the result keeps the input's shape).
  CHECK(nn::prelu(tensor(-2.0, DType::float64), tensor({0.25}, DType::float64)).dim() == 0);
  CHECK(nn::prelu(tensor(-2.0, DType::float64), tensor({0.25}, DType::float64)).item() == -0.5);
  CHECK(nn::PReLU(1, 0.25, DType::float64)(tensor({{-4.0, 4.0}}, DType::float64)).to_vector() ==
        std::vector<double>{-1.0, 4.0});
  CHECK_THROWS_WITH(nn::PReLU()(tensor({1.0}, DType::float64)), Contains("PReLU::forward"));
}

TEST_CASE("nn: the added activations stay finite at infinite inputs where PyTorch's do", "[activation]") {
  const Tensor x = leaf({-INFINITY, INFINITY}, {2});
  const Tensor a = leaf({0.25}, {1});
  sum(nn::hardswish(x) + nn::prelu(x, a) + nn::hardtanh(x) + nn::hardshrink(x) + nn::threshold(x, 1, 2)).backward();
  // -inf: hardswish 0, prelu 0.25, hardtanh 0, hardshrink 1, threshold 0; +inf: 1, 1, 0, 1, 1.
  CHECK(x.grad().to_vector() == std::vector<double>{1.25, 4.0});
  CHECK(a.grad().to_vector() == std::vector<double>{-INFINITY});  // -inf from x = -inf, 0 from +inf
  const Tensor y = nn::logsigmoid(x);
  CHECK(y.to_vector() == std::vector<double>{-INFINITY, 0.0});
}

// LibTorch 1.13's values and gradients (seed 1, float64, the same throwaway program) in the far
// tails, where e^z is tiny beside 1: relative 1e-13 and no absolute margin, so a log(1 + e^z) that
// rounds 1 + e^z (1e-3 relative at z = -30 before log1p) fails.
TEST_CASE("nn: Softplus, LogSigmoid and Mish keep their far tails to the last bits, as PyTorch's", "[activation]") {
  struct Tail {
    const char* name;
    Activation f;
    std::vector<double> x, y, grad;
  };
  const std::vector<Tail> tails = {
      {"softplus", [](const Tensor& x) { return nn::softplus(x); },
       {-700, -40, -30, -20.5, -1e-10, 0, 1e-10, 19.9, 20.1, 40},
       {9.8596765437597708e-305, 4.2483542552915889e-18, 9.3576229688397368e-14, 1.2501528656053017e-09,
        0.69314718050994528, 0.69314718055994529, 0.69314718060994529, 19.900000002277924, 20.100000000000001, 40},
       {9.8596765437597708e-305, 4.2483542552915889e-18, 9.3576229688393001e-14, 1.2501528648238605e-09,
        0.499999999975, 0.5, 0.500000000025, 0.99999999772207293, 1, 1}},
      {"softplus(beta 2, threshold 5)", [](const Tensor& x) { return nn::softplus(x, 2, 5); },
       {-30, -1, 2.4, 2.6},
       {4.37825538134826e-27, 0.063464005521486247, 2.404098033669134, 2.6000000000000001},
       {8.75651076269652e-27, 0.11920292202211755, 0.99183742884684012, 1}},
      {"logsigmoid", [](const Tensor& x) { return nn::logsigmoid(x); },
       {-800, -40, -1, 0, 30, 40, 800},
       {-800, -40, -1.3132616875182228, -0.69314718055994529, -9.3576229688397368e-14, -4.2483542552915889e-18, 0},
       {1, 1, 0.7310585786300049, 0.5, 9.3576229688393001e-14, 4.2483542552915889e-18, 0}},
      {"mish", [](const Tensor& x) { return nn::mish(x); },
       {-40, -30, -1e-10, 0, 1, 30},
       {-1.6993417021166355e-16, -2.8072868906519209e-12, -5.99999999968e-11, 0, 0.86509838826731034, 30},
       {-1.6568581595637197e-16, -2.7137106609633922e-12, 0.59999999993600006, 0.59999999999999998,
        1.0490362200997922, 1}},
  };
  for (const Tail& t : tails) {
    INFO(t.name);
    const Shape shape{static_cast<int64_t>(t.x.size())};
    const Tensor x = leaf(t.x, shape);
    const Tensor y = t.f(x);
    sum(y).backward();
    const std::vector<double> got_y = y.to_vector(), got_grad = x.grad().to_vector();
    for (std::size_t i = 0; i < t.x.size(); ++i) {
      INFO("x = " << t.x[i]);
      CHECK(got_y[i] == Approx(t.y[i]).epsilon(1e-13).margin(0));
      CHECK(got_grad[i] == Approx(t.grad[i]).epsilon(1e-13).margin(0));
    }
  }
}

// ELU's family takes e^z - 1 as expm1, exact where PyTorch 1.13's exp(z) - 1 cancels: at -1e-10,
// PyTorch gives -1.000000082740371e-10 for ELU (8e-8 relative off), expm1 -9.9999999995e-11. The
// gradients (alpha scale e^z) agree with PyTorch's: 0.99999999989999999 for ELU.
TEST_CASE("nn: ELU, SELU and CELU keep a tiny negative input exact", "[activation]") {
  const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  const Tensor x = leaf({-1e-10}, {1});
  const Tensor elu = nn::elu(x), selu = nn::selu(x), celu = nn::celu(x, 2);
  CHECK(elu.item() == Approx(std::expm1(-1e-10)).epsilon(1e-15).margin(0));
  CHECK(selu.item() == Approx(scale * alpha * std::expm1(-1e-10)).epsilon(1e-15).margin(0));
  CHECK(celu.item() == Approx(2 * std::expm1(-0.5e-10)).epsilon(1e-15).margin(0));
  elu.backward();
  CHECK(x.grad().item() == Approx(0.99999999989999999).epsilon(1e-15).margin(0));
}

// PyTorch's `x > t ? ... : ...` kernels: a NaN takes the branch that is not the identity, so
// leaky_relu's gradient at NaN is its slope, and softplus's is NaN (LibTorch 1.13: 0.1 and nan).
TEST_CASE("nn: LeakyReLU's and Softplus's gradients at NaN are PyTorch's", "[activation]") {
  const Tensor a = leaf({NAN, 1.0}, {2}), b = leaf({NAN, 1.0}, {2});
  const Tensor lr = nn::leaky_relu(a, 0.1), sp = nn::softplus(b);
  CHECK(std::isnan(lr.to_vector()[0]));
  CHECK(std::isnan(sp.to_vector()[0]));
  sum(lr).backward();
  sum(sp).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0.1, 1.0});
  CHECK(std::isnan(b.grad().to_vector()[0]));
  CHECK(b.grad().to_vector()[1] == Approx(0.7310585786300049).epsilon(1e-14));
}

TEST_CASE("nn: the added activations print as torch's", "[activation]") {
  CHECK(nn::Hardtanh().to_string() == "Hardtanh(min_val=-1, max_val=1)");
  CHECK(nn::Hardtanh(-2, 0.5).to_string() == "Hardtanh(min_val=-2, max_val=0.5)");
  CHECK(nn::ReLU6().to_string() == "ReLU6()");
  CHECK(nn::Hardsigmoid().to_string() == "Hardsigmoid()");
  CHECK(nn::Hardswish().to_string() == "Hardswish()");
  CHECK(nn::Mish().to_string() == "Mish()");
  CHECK(nn::SELU().to_string() == "SELU()");
  CHECK(nn::CELU().to_string() == "CELU(alpha=1)");
  CHECK(nn::CELU(0.5).to_string() == "CELU(alpha=0.5)");
  CHECK(nn::PReLU().to_string() == "PReLU(num_parameters=1)");
  CHECK(nn::PReLU(16, 0.1, DType::float64).to_string() == "PReLU(num_parameters=16, dtype=float64)");
  CHECK(nn::Softsign().to_string() == "Softsign()");
  CHECK(nn::Tanhshrink().to_string() == "Tanhshrink()");
  CHECK(nn::LogSigmoid().to_string() == "LogSigmoid()");
  CHECK(nn::Softmin(1).to_string() == "Softmin(dim=1)");
  CHECK(nn::Threshold(0.1, 20).to_string() == "Threshold(threshold=0.1, value=20)");
  CHECK(nn::GLU().to_string() == "GLU(dim=-1)");
  CHECK(nn::GLU(1).to_string() == "GLU(dim=1)");
  CHECK(nn::Hardshrink().to_string() == "Hardshrink(0.5)");
  CHECK(nn::Softshrink(1.5).to_string() == "Softshrink(1.5)");
  CHECK(nn::Mish().parameters().empty());
}

TEST_CASE("nn: the added activations reject bad options and inputs with messages naming them", "[activation]") {
  const Tensor x = zeros({2, 3}, DType::float64);
  CHECK_THROWS_WITH(nn::hardtanh(x, 1, -1),
                    Contains("hardtanh: min_val must be <= max_val, got min_val=1 and max_val=-1"));
  CHECK(nn::hardtanh(x, 0.5, 0.5).to_vector() == std::vector<double>(6, 0.5));  // as torch's functional form
  CHECK_THROWS_WITH(nn::Hardtanh(1, 1), Contains("Hardtanh: min_val must be < max_val, got min_val=1 and max_val=1"));
  CHECK_THROWS_WITH(nn::Hardtanh(2, -2), Contains("Hardtanh: min_val must be < max_val, got min_val=2 and max_val=-2"));
  CHECK_THROWS_WITH(nn::glu(x, 1),
                    Contains("glu: the size of dim 1 must be even (it is halved), got 3 in shape [2, 3]"));
  CHECK_THROWS_WITH(nn::GLU(-1)(x), Contains("glu: the size of dim -1 must be even"));
  CHECK_THROWS_WITH(nn::glu(Tensor(1.0)), Contains("glu: the input must be at least 1-d, got a 0-d tensor"));
  CHECK_THROWS_AS(nn::glu(x, 2), std::out_of_range);
  CHECK_THROWS_WITH(nn::celu(x, 0), Contains("celu: alpha must not be 0"));
  CHECK_THROWS_WITH(nn::CELU(0), Contains("CELU: alpha must not be 0"));
  CHECK_THROWS_WITH(nn::softshrink(x, -1), Contains("softshrink: lambd must be >= 0, got -1"));
  CHECK_THROWS_WITH(nn::Softshrink(-0.5), Contains("Softshrink: lambd must be >= 0, got -0.5"));
  CHECK(nn::hardshrink(tensor({-2.0, 0.0, 2.0}, DType::float64), -1).to_vector() ==
        std::vector<double>{-2.0, 0.0, 2.0});  // a negative lambd: no dead zone, as torch's
  CHECK_THROWS_WITH(nn::PReLU(0), Contains("PReLU: num_parameters must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::PReLU(2, 0.25, DType::float64)(x),
                    Contains("prelu: the weight has 2 elements, and must have 1 or one per channel (the input's "
                             "size along dim 1, here 3); input shape [2, 3]"));
  CHECK_THROWS_WITH(nn::prelu(ones({3}, DType::float64), ones({3}, DType::float64)),
                    Contains("here none: the input is not 2-d or more); input shape [3]"));
  CHECK_THROWS_WITH(nn::prelu(Tensor(1.0), ones({3})), Contains("input shape []"));
  CHECK_THROWS_WITH(nn::prelu(x, ones({3, 1}, DType::float64)),
                    Contains("prelu: the weight must be 0-d or 1-d, got shape [3, 1]"));
  CHECK_THROWS_WITH(nn::prelu(x, Tensor()), Contains("prelu: the weight is undefined"));
  CHECK_THROWS_AS(nn::softmin(x, 2), std::out_of_range);
  CHECK_THROWS_WITH(nn::softmin(Tensor(1.0), 1), Contains("softmin"));
  CHECK(nn::softmin(tensor(3.0), -1).item() == 1.0);  // a 0-d input is one element, as softmax's
  for (const auto& [name, f] : std::vector<std::pair<std::string, Activation>>{
           {"relu6", [](const Tensor& t) { return nn::relu6(t); }},
           {"mish", [](const Tensor& t) { return nn::mish(t); }},
           {"logsigmoid", [](const Tensor& t) { return nn::logsigmoid(t); }},
           {"threshold", [](const Tensor& t) { return nn::threshold(t, 0, 0); }},
           {"prelu", [](const Tensor& t) { return nn::prelu(t, ones({1})); }}})
    CHECK_THROWS_WITH(f(Tensor()), Contains(name + ": the input is undefined"));
}
