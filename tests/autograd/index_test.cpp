// index_select and index_add (autograd/tensor_index.cpp): values, gradients with repeated
// indices, and the errors. Their finite-difference rows are in gradcheck_table_test.cpp and
// second_order_test.cpp.
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"

using namespace chainrule;
using Catch::Matchers::Contains;

TEST_CASE("index_select takes slices in the indices' order, and its gradient adds repeats up", "[autograd][index]") {
  const Tensor x = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}}, TensorOptions(DType::float64).requires_grad());
  const Tensor rows = index_select(x, 0, {2, 0, 2});
  CHECK(rows.shape() == Shape{3, 3});
  CHECK(rows.to_vector() == std::vector<double>{7, 8, 9, 1, 2, 3, 7, 8, 9});
  const Tensor cols = index_select(x, -1, {1});
  CHECK(cols.shape() == Shape{3, 1});
  CHECK(cols.to_vector() == std::vector<double>{2, 5, 8});
  sum(rows * tensor({{1.0}, {10.0}, {100.0}}, DType::float64)).backward();
  // Row 2 was taken twice (weights 1 and 100), row 0 once (10), row 1 never.
  CHECK(x.grad().to_vector() == std::vector<double>{10, 10, 10, 0, 0, 0, 101, 101, 101});
  // No indices: an empty slice along dim, as torch.index_select.
  const Tensor none = index_select(x, 1, {});
  CHECK(none.shape() == Shape{3, 0});
  // An embedding lookup in float32.
  const Tensor table = reshape(arange(0, 8, 1, DType::float32), {4, 2});
  CHECK(index_select(table, 0, {3, 1}).to_vector() == std::vector<double>{6, 7, 2, 3});
}

TEST_CASE("index_add adds source's slices at the indices, repeats adding up", "[autograd][index]") {
  const TensorOptions p = TensorOptions(DType::float64).requires_grad();
  const Tensor base = tensor({{1.0, 1.0}, {1.0, 1.0}, {1.0, 1.0}}, p);
  const Tensor src = tensor({{1.0, 2.0}, {10.0, 20.0}, {100.0, 200.0}}, p);
  const Tensor y = index_add(base, 0, {2, 0, 2}, src);
  CHECK(y.to_vector() == std::vector<double>{11, 21, 1, 1, 102, 203});
  CHECK(base.to_vector() == std::vector<double>{1, 1, 1, 1, 1, 1});  // a new tensor, base untouched
  sum(y * tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}, DType::float64)).backward();
  CHECK(base.grad().to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(src.grad().to_vector() == std::vector<double>{5, 6, 1, 2, 5, 6});  // the rows it went to
  // Along the last dim of a 3-D tensor.
  const Tensor z = index_add(zeros({2, 1, 3}), -1, {0, 0}, ones({2, 1, 2}));
  CHECK(z.to_vector() == std::vector<double>{2, 0, 0, 2, 0, 0});
}

TEST_CASE("index ops: bad indices, dims, shapes and dtypes are refused by name", "[autograd][index][errors]") {
  const Tensor x = zeros({3, 2});
  CHECK_THROWS_AS(index_select(x, 0, {3}), std::out_of_range);
  CHECK_THROWS_WITH(index_select(x, 0, {0, 3}),
                    Contains("index_select: index 3 (position 1) is out of range for dim 0 of size 3 (shape [3, 2])"));
  CHECK_THROWS_WITH(index_select(x, 1, {-1}), Contains("index_select: index -1"));
  CHECK_THROWS_AS(index_select(x, 2, {0}), std::out_of_range);
  CHECK_THROWS_WITH(index_select(zeros({}), 0, {0}), Contains("index_select: the tensor is 0-d"));
  CHECK_THROWS_WITH(index_select(Tensor(), 0, {0}), Contains("index_select: the tensor is undefined"));
  CHECK_THROWS_WITH(index_add(x, 0, {0, 1}, zeros({3, 2})),
                    Contains("index_add: source has shape [3, 2], but base [3, 2] with 2 indices along dim 0 needs [2, 2]"));
  CHECK_THROWS_WITH(index_add(x, 0, {0}, zeros({1, 2}, DType::float64)),
                    Contains("index_add: base is float32 and source is float64"));
  CHECK_THROWS_WITH(index_add(x, 0, {5}, zeros({1, 2})), Contains("index_add: index 5"));
  CHECK_THROWS_WITH(index_add(x, 0, {0}, Tensor()), Contains("index_add: the source tensor is undefined"));
}
