// nn::Embedding: lookups, gradients into the rows used, shapes, errors, saving.
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "nn/nn.h"

using namespace chainrule;
using Catch::Contains;

TEST_CASE("nn: Embedding looks rows up by id, and its gradient goes to the rows used") {
  nn::Embedding e(nn::EmbeddingOptions(4, 2).dtype(DType::float64).seed(3));
  nn::set_values(e.weight(), {{0.0, 1.0}, {10.0, 11.0}, {20.0, 21.0}, {30.0, 31.0}});
  const Tensor v = e.forward(std::vector<int64_t>{3, 1, 3});
  CHECK(v.shape() == Shape{3, 2});
  CHECK(v.to_vector() == std::vector<double>{30, 31, 10, 11, 30, 31});
  // Ids as a tensor of any shape: its shape + [embedding_dim].
  const Tensor batch = e.forward(tensor({{1.0, 2.0}, {0.0, 3.0}}, DType::float32));
  CHECK(batch.shape() == Shape{2, 2, 2});
  CHECK(batch.to_vector() == std::vector<double>{10, 11, 20, 21, 0, 1, 30, 31});
  sum(v * tensor({{1.0, 1.0}, {2.0, 2.0}, {4.0, 4.0}}, DType::float64)).backward();
  // Row 3 was used twice (weights 1 and 4), row 1 once (2); rows 0 and 2 not at all.
  CHECK(e.weight().grad().to_vector() == std::vector<double>{0, 0, 2, 2, 0, 0, 5, 5});
  CHECK(e.to_string() == "Embedding(num_embeddings=4, embedding_dim=2, dtype=float64)");
  CHECK(e.named_parameters().size() == 1);
  CHECK(e.named_parameters()[0].first == "weight");
}

TEST_CASE("nn: Embedding's default weights are N(0, 1) and seeded, and its gradient checks out") {
  nn::Embedding a(nn::EmbeddingOptions(50, 40).seed(7)), b(nn::EmbeddingOptions(50, 40).seed(7));
  CHECK(a.weight().to_vector() == b.weight().to_vector());
  double mean = 0, sq = 0;
  for (double w : a.weight().to_vector()) mean += w, sq += w * w;
  mean /= 2000;
  CHECK(std::abs(mean) < 0.1);
  CHECK(std::sqrt(sq / 2000 - mean * mean) == Approx(1.0).epsilon(0.1));
  nn::Embedding e(nn::EmbeddingOptions(5, 3).dtype(DType::float64).seed(1));
  const auto report = gradcheck_model([&] { return sum(tanh(e.forward(std::vector<int64_t>{4, 0, 4, 2}))); },
                                      e.named_parameters());
  INFO(report);
  CHECK(report.passed);
}

TEST_CASE("nn: Embedding refuses bad sizes and ids by name") {
  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(0, 3)), Contains("Embedding: num_embeddings must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(3, -1)), Contains("Embedding: embedding_dim must be >= 1, got -1"));
  nn::Embedding e(nn::EmbeddingOptions(3, 2));
  CHECK_THROWS_WITH(e.forward(std::vector<int64_t>{0, 3}),
                    Contains("Embedding::forward: id 3 (position 1) is not in [0, 3) (num_embeddings)"));
  CHECK_THROWS_AS(e.forward(std::vector<int64_t>{-1}), std::out_of_range);
  CHECK_THROWS_WITH(e.forward(tensor({0.0, 1.5})),
                    Contains("Embedding::forward: id 1.5 (element 1 of ids [2]) is not a whole number in [0, 3)"));
  CHECK_THROWS_AS(e.forward(tensor({NAN})), std::out_of_range);
  CHECK_THROWS_AS(e.forward(Tensor()), std::invalid_argument);
  nn::Embedding moved = std::move(e);
  CHECK_THROWS_WITH(e.forward(std::vector<int64_t>{0}), Contains("moved from"));  // NOLINT(bugprone-use-after-move)
  CHECK(moved.forward(std::vector<int64_t>{2}).shape() == Shape{1, 2});
}

TEST_CASE("nn: Embedding's padding row starts at zero and takes no gradient, as torch's padding_idx") {
  nn::Embedding e(nn::EmbeddingOptions(4, 2).dtype(DType::float64).seed(3).padding_idx(-3));  // row 1
  REQUIRE(e.padding_row() == 1);
  const std::vector<double> w = e.weight().to_vector();
  CHECK(w[2] == 0.0);
  CHECK(w[3] == 0.0);
  CHECK(w[0] != 0.0);  // the other rows keep their N(0, 1) values
  CHECK(e.to_string() == "Embedding(num_embeddings=4, embedding_dim=2, padding_idx=1, dtype=float64)");

  nn::set_values(e.weight(), {{0.0, 1.0}, {10.0, 11.0}, {20.0, 21.0}, {30.0, 31.0}});  // a set row is returned
  const Tensor v = e.forward(tensor({{1.0, 3.0}, {1.0, 0.0}}));
  CHECK(v.to_vector() == std::vector<double>{10, 11, 30, 31, 10, 11, 0, 1});
  sum(v * 2.0).backward();
  CHECK(e.weight().grad().to_vector() == std::vector<double>{2, 2, 0, 0, 0, 0, 2, 2});
  // Without the padding row among the ids the lookup is the plain one.
  e.weight().zero_grad();
  sum(e.forward(std::vector<int64_t>{2, 2})).backward();
  CHECK(e.weight().grad().to_vector() == std::vector<double>{0, 0, 0, 0, 2, 2, 0, 0});

  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(4, 2).padding_idx(4)),
                    Contains("Embedding: padding_idx must be in [-4, 4) (num_embeddings), got 4"));
  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(4, 2).padding_idx(-5)), Contains("got -5"));
}

TEST_CASE("nn: Embedding's max_norm scales the rows looked up to that norm in place, as torch's") {
  nn::Embedding e(nn::EmbeddingOptions(4, 2).dtype(DType::float64).max_norm(5.0));
  CHECK(e.to_string() == "Embedding(num_embeddings=4, embedding_dim=2, max_norm=5, dtype=float64)");
  nn::set_values(e.weight(), {{3.0, 4.0}, {6.0, 8.0}, {0.0, -10.0}, {30.0, 40.0}});  // norms 5, 10, 10, 50
  const Tensor v = e.forward(std::vector<int64_t>{1, 0, 1});
  // Row 1 (norm 10) is scaled by 5 / (10 + 1e-7); row 0 (norm 5, not over) and the rows not looked
  // up (2, 3) stay.
  const double s = 5.0 / (10.0 + 1e-7);
  const std::vector<double> w = e.weight().to_vector();
  CHECK(w == std::vector<double>{3, 4, 6 * s, 8 * s, 0, -10, 30, 40});
  CHECK(v.to_vector() == std::vector<double>{6 * s, 8 * s, 3, 4, 6 * s, 8 * s});
  // The gradient flows to the renormalised rows as to any looked-up row.
  sum(v).backward();
  CHECK(e.weight().grad().to_vector() == std::vector<double>{1, 1, 2, 2, 0, 0, 0, 0});

  // norm_type: the infinity norm of row 2 is 10 (over 2), of row 0 1 (kept); row 3's 1-norm is 70.
  nn::Embedding inf(nn::EmbeddingOptions(4, 2).dtype(DType::float64).max_norm(2.0).norm_type(INFINITY));
  nn::set_values(inf.weight(), {{1.0, -1.0}, {0.0, 0.0}, {0.0, -10.0}, {30.0, 40.0}});
  inf.forward(std::vector<int64_t>{2, 0});
  CHECK(inf.weight().to_vector()[5] == -10 * (2.0 / (10.0 + 1e-7)));
  CHECK(inf.weight().to_vector()[0] == 1.0);
  nn::Embedding l1(nn::EmbeddingOptions(4, 2).max_norm(7.0).norm_type(1.0));  // float32
  CHECK(l1.to_string() == "Embedding(num_embeddings=4, embedding_dim=2, max_norm=7, norm_type=1)");
  nn::set_values(l1.weight(), {{1.0, -1.0}, {0.0, 0.0}, {0.0, -10.0}, {30.0, 40.0}});
  l1.forward(tensor({{3.0}}));
  CHECK(l1.weight().to_vector()[6] == Approx(3.0).epsilon(1e-6));
  CHECK(l1.weight().to_vector()[7] == Approx(4.0).epsilon(1e-6));

  // In place: a graph recorded before that saved the weight refuses its backward, as torch's.
  nn::set_values(e.weight(), {{3.0, 4.0}, {6.0, 8.0}, {0.0, -10.0}, {30.0, 40.0}});
  const Tensor before = sum(e.weight() * e.weight());
  e.forward(std::vector<int64_t>{3});
  CHECK_THROWS_WITH(before.backward(), Contains("modified in place"));

  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(4, 2).max_norm(0.0)), Contains("Embedding: max_norm must be > 0, got 0"));
  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(4, 2).norm_type(-1.0)),
                    Contains("Embedding: norm_type must be > 0 (or infinity), got -1"));
}

TEST_CASE("nn: weight tying: a Dense layer sharing an Embedding's table gets both uses' gradients") {
  // A language model's ends: ids -> embedding [V, D] -> ... -> logits = h W^T with W the same table.
  auto model = std::make_shared<nn::Sequential>();
  auto embed = std::make_shared<nn::Embedding>(nn::EmbeddingOptions(5, 3).dtype(DType::float64).seed(1));
  auto decode = std::make_shared<nn::Dense>(nn::DenseOptions(3, 5).bias(false).dtype(DType::float64).seed(2));
  model->push_back("embed", embed);
  model->push_back("decode", decode);
  decode->set_weight(embed->weight());
  CHECK(decode->weight().impl() == embed->weight().impl());
  REQUIRE(model->parameters().size() == 1);  // listed once, under its first name
  CHECK(model->named_parameters()[0].first == "embed.weight");

  const std::vector<int64_t> ids{4, 0, 4};
  const Tensor target = tensor({1.0, -2.0, 0.5, 3.0, 0.0}, DType::float64);
  const auto loss = [&](const Tensor& table_in, const Tensor& table_out) {
    const Tensor h = index_select(table_in, 0, ids);
    return sum(pow(matmul(h, transpose(table_out, 0, 1)) - target, 2.0));
  };
  loss(embed->weight(), decode->weight()).backward();
  // The same two uses through separate copies of the table: the tied gradient is their sum.
  const Tensor in = embed->weight().detach().clone().set_requires_grad(true);
  const Tensor out = embed->weight().detach().clone().set_requires_grad(true);
  loss(in, out).backward();
  const std::vector<double> tied = embed->weight().grad().to_vector(), a = in.grad().to_vector(),
                            b = out.grad().to_vector();
  for (size_t i = 0; i < tied.size(); ++i) CHECK(tied[i] == Approx(a[i] + b[i]).epsilon(1e-14));
  // Through the layers' forwards too.
  embed->weight().zero_grad();
  sum(pow(decode->forward(embed->forward(ids)) - target, 2.0)).backward();
  const std::vector<double> again = embed->weight().grad().to_vector();
  for (size_t i = 0; i < tied.size(); ++i) CHECK(again[i] == Approx(tied[i]).epsilon(1e-14));

  CHECK_THROWS_WITH(decode->set_weight(zeros({3, 5}, DType::float64)),
                    Contains("Dense::replace_parameter: 'weight' is float64 [5, 3], the tensor given is float64 [3, 5]"));
  CHECK_THROWS_WITH(decode->set_weight(embed->weight() * 2.0), Contains("is the result of 'mul', not a leaf"));
  CHECK(decode->weight().impl() == embed->weight().impl());  // unchanged after the refusals
}
