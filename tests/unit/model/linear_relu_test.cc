// LinearRelu is relu(at::linear(x, w, b)): values and the three gradients, 2-D and 3-D inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/linear_relu.h"

namespace cadenza {
namespace {

TEST(LinearRelu, MatchesLinearThenReluValuesAndGradients) {
  for (const std::vector<int64_t>& lead : {std::vector<int64_t>{7}, std::vector<int64_t>{3, 5}, std::vector<int64_t>{2, 65}}) {
    torch::manual_seed(6);
    auto shape = lead;
    shape.push_back(24);
    auto x = torch::randn(shape).requires_grad_(true);
    auto w = torch::randn({40, 24}).requires_grad_(true);
    auto b = torch::randn({40}).requires_grad_(true);
    auto expected = torch::relu(at::linear(x, w, b));
    auto upstream = torch::randn(expected.sizes());
    auto expected_grads = torch::autograd::grad({(expected * upstream).sum()}, {x, w, b});
    auto got = LinearRelu(x, w, b);
    ASSERT_EQ(got.sizes(), expected.sizes());
    auto got_grads = torch::autograd::grad({(got * upstream).sum()}, {x, w, b});
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5);
    EXPECT_GT((got == 0).sum().item<int64_t>(), 0);  // the ReLU did cut something
    const char* names[] = {"dx", "dw", "db"};
    for (int i = 0; i < 3; ++i) EXPECT_LT((got_grads[i] - expected_grads[i]).abs().max().item<double>(), 1e-4) << names[i];
  }
}

}  // namespace
}  // namespace cadenza
