// mlp_b*/handwritten: the floor. Plain float32 buffers allocated once, the three products of the
// forward and the five of the backward through CBLAS (sgemm; at batch 1 the matrix-vector forms
// sgemv and sger, which are several times faster there), the bias, ReLU and softmax loops written
// out, and the weight update fused into the gradient product (W <- W - lr * grad^T a as one product
// with alpha = -lr, beta = 1). Also defines the shared problem (mlp.h).
//
// mlp_b*/cblas: a bound, not a competitor (System::bound): the floor's eight products and nothing
// else (no ReLU, softmax, mask or bias-gradient loops), so that one run shows how much of a step is
// the matrix products themselves.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "bench/mlp.h"

namespace chainrule::bench::mlp {

const Problem& problem(int batch) {
  static std::map<int, Problem> made;  // built on first use, from the checks (single-threaded)
  auto [it, inserted] = made.try_emplace(batch);
  Problem& p = it->second;
  if (!inserted) return p;
  p.batch = batch;
  const auto seed = static_cast<uint64_t>(batch);
  for (double v : uniform_numbers(static_cast<size_t>(batch) * kIn, 0.0, 1.0, 1000 + seed))
    p.x.push_back(static_cast<float>(v));
  for (double v : uniform_numbers(static_cast<size_t>(batch), 0.0, kOut, 2000 + seed))
    p.labels.push_back(std::min<int64_t>(kOut - 1, static_cast<int64_t>(v)));
  // The weights do not depend on the batch size: the three workloads train the same network.
  uint64_t layer_seed = 3000;
  for (const Layer& l : kLayers) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(l.in));
    for (size_t count : {static_cast<size_t>(l.out) * l.in, static_cast<size_t>(l.out)}) {
      std::vector<float> values;
      for (double v : uniform_numbers(count, -bound, bound, layer_seed++)) values.push_back(static_cast<float>(v));
      p.params.push_back(std::move(values));
    }
  }
  return p;
}

namespace {

// kProductsOnly: the bound. Its output gradient is a fixed 0.01 / B everywhere (it computes no
// loss) and the sign of its update alternates between steps, so that the weights stay near their
// start however many steps the benchmark runs (a product's speed does not depend on the values, as
// long as they are normal numbers).
template <bool kProductsOnly>
class HandwrittenMlp {
 public:
  explicit HandwrittenMlp(const Problem& p)
      : p_(p), params_(p.params), b_(p.batch),
        z1_(b_ * kHidden), z2_(b_ * kHidden), logits_(b_ * kOut), dz1_(b_ * kHidden), dz2_(b_ * kHidden),
        dlogits_(b_ * kOut, kProductsOnly ? 0.01f / static_cast<float>(b_) : 0.0f) {}

  double step() {
    if constexpr (kProductsOnly) return products_step();
    float *w1 = params_[0].data(), *b1 = params_[1].data(), *w2 = params_[2].data(), *b2 = params_[3].data(),
          *w3 = params_[4].data(), *b3 = params_[5].data();
    const float* x = p_.x.data();
    // Forward; z1 and z2 become h1 and h2 in place (relu), their sign is all the backward needs.
    dense(x, kIn, w1, b1, kHidden, z1_.data());
    relu(z1_);
    dense(z1_.data(), kHidden, w2, b2, kHidden, z2_.data());
    relu(z2_);
    dense(z2_.data(), kHidden, w3, b3, kOut, logits_.data());

    // Softmax cross-entropy, mean over the batch: dloss/dlogits = (softmax - onehot) / B.
    double loss = 0.0;
    const float inv_b = 1.0f / static_cast<float>(b_);
    for (int n = 0; n < b_; ++n) {
      const float* z = &logits_[n * kOut];
      float* d = &dlogits_[n * kOut];
      const float m = *std::max_element(z, z + kOut);
      float total = 0.0f;
      for (int c = 0; c < kOut; ++c) total += (d[c] = std::exp(z[c] - m));
      const int label = static_cast<int>(p_.labels[n]);
      loss += std::log(total) - (z[label] - m);
      for (int c = 0; c < kOut; ++c) d[c] = (d[c] / total - (c == label ? 1.0f : 0.0f)) * inv_b;
    }
    loss /= b_;

    // Backward, each layer's input gradient before its weights change.
    back(dlogits_.data(), kOut, z2_.data(), kHidden, w3, b3, dz2_.data());
    back(dz2_.data(), kHidden, z1_.data(), kHidden, w2, b2, dz1_.data());
    back(dz1_.data(), kHidden, x, kIn, w1, b1, nullptr);
    return loss;
  }

  std::vector<std::vector<float>> params() const { return params_; }

 private:
  // The bound's step: the same eight products on the same buffers; returns a logit so that the
  // products cannot be dropped.
  double products_step() {
    float *w1 = params_[0].data(), *b1 = params_[1].data(), *w2 = params_[2].data(), *b2 = params_[3].data(),
          *w3 = params_[4].data(), *b3 = params_[5].data();
    dense(p_.x.data(), kIn, w1, b1, kHidden, z1_.data());
    dense(z1_.data(), kHidden, w2, b2, kHidden, z2_.data());
    dense(z2_.data(), kHidden, w3, b3, kOut, logits_.data());
    const float alpha = (sign_ = -sign_) * static_cast<float>(kLearningRate);
    input_grad(dlogits_.data(), kOut, w3, kHidden, dz2_.data());
    update(dlogits_.data(), kOut, z2_.data(), kHidden, w3, alpha);
    input_grad(dz2_.data(), kHidden, w2, kHidden, dz1_.data());
    update(dz2_.data(), kHidden, z1_.data(), kHidden, w2, alpha);
    update(dz1_.data(), kHidden, p_.x.data(), kIn, w1, alpha);
    return logits_[0];
  }

  // The three products, for B rows (one row: the matrix-vector forms).
  // y[B, out] = a[B, in] W^T + b
  void dense(const float* a, int in, const float* w, const float* b, int out, float* y) const {
    for (int n = 0; n < b_; ++n) std::copy(b, b + out, y + n * out);
    if (b_ == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, a, 1, 1.0f, y, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b_, out, in, 1.0f, a, in, w, in, 1.0f, y, out);
  }
  // da[B, in] = dz[B, out] W
  void input_grad(const float* dz, int out, const float* w, int in, float* da) const {
    if (b_ == 1)
      cblas_sgemv(CblasRowMajor, CblasTrans, out, in, 1.0f, w, in, dz, 1, 0.0f, da, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b_, in, out, 1.0f, dz, out, w, in, 0.0f, da, in);
  }
  // W += alpha dz^T a: the weight update fused into the gradient product.
  void update(const float* dz, int out, const float* a, int in, float* w, float alpha) const {
    if (b_ == 1)
      cblas_sger(CblasRowMajor, out, in, alpha, dz, 1, a, 1, w, in);
    else
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, b_, alpha, dz, out, a, in, 1.0f, w, in);
  }
  static void relu(std::vector<float>& z) {
    for (float& v : z) v = v > 0.0f ? v : 0.0f;
  }
  // Given dz [B, out] of a layer with input a [B, in] (a relu output when da != nullptr): da = (dz W)
  // masked by a > 0 (relu'(0) = 0), then W -= lr dz^T a and b -= lr colsum(dz).
  void back(const float* dz, int out, const float* a, int in, float* w, float* b, float* da) const {
    const auto lr = static_cast<float>(kLearningRate);
    if (da) {
      input_grad(dz, out, w, in, da);
      for (int i = 0; i < b_ * in; ++i)
        if (!(a[i] > 0.0f)) da[i] = 0.0f;
    }
    update(dz, out, a, in, w, -lr);
    for (int j = 0; j < out; ++j) {
      float g = 0.0f;
      for (int n = 0; n < b_; ++n) g += dz[n * out + j];
      b[j] -= lr * g;
    }
  }

  const Problem& p_;
  std::vector<std::vector<float>> params_;
  int b_;
  std::vector<float> z1_, z2_, logits_, dz1_, dz2_, dlogits_;
  float sign_ = 1.0f;  // the bound's update sign, flipped every step
};

[[maybe_unused]] const bool workloads_registered = [] {
  for (int batch : {128, 8, 1})
    add_workload({workload_name(batch), "handwritten", kRelTol,
                  "784-256-256-10 ReLU MLP, float32, batch " + std::to_string(batch) +
                      ", softmax cross-entropy (mean), SGD lr 0.01; time per training step"});
  return true;
}();
[[maybe_unused]] const bool registered = add_all<HandwrittenMlp<false>>("handwritten");
[[maybe_unused]] const bool bound_registered = add_all<HandwrittenMlp<true>>("cblas", /*bound=*/true);

}  // namespace
}  // namespace chainrule::bench::mlp
