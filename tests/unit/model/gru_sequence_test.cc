// GruSequence is the same function as one torch::nn::GRU layer: outputs and all five gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/gru_sequence.h"

namespace cadenza {
namespace {

struct Shape {
  int64_t T, B, In, H;
};

class GruSequenceTest : public ::testing::TestWithParam<Shape> {};

TEST_P(GruSequenceTest, MatchesTorchGruValuesAndGradients) {
  const Shape s = GetParam();
  torch::manual_seed(4);
  torch::nn::GRU reference(torch::nn::GRUOptions(s.In, s.H));
  auto params = reference->named_parameters();
  // Large inputs push the gates into saturation too, where sigmoid/tanh approximations would show.
  auto x = (torch::randn({s.T, s.B, s.In}) * 3).requires_grad_(true);
  auto upstream = torch::randn({s.T, s.B, s.H});

  auto expected = std::get<0>(reference(x));
  (expected * upstream).sum().backward();
  std::vector<torch::Tensor> expected_grads{x.grad().clone()};
  for (const char* name : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) expected_grads.push_back(params[name].grad().clone());
  x.mutable_grad().zero_();
  for (auto& p : reference->parameters()) p.mutable_grad().zero_();

  auto got = GruSequence(x, params["weight_ih_l0"], params["weight_hh_l0"], params["bias_ih_l0"], params["bias_hh_l0"]);
  (got * upstream).sum().backward();
  std::vector<torch::Tensor> got_grads{x.grad()};
  for (const char* name : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) got_grads.push_back(params[name].grad());

  EXPECT_LT((got - expected).abs().max().item<double>(), 2e-6);
  const char* names[] = {"x", "w_ih", "w_hh", "b_ih", "b_hh"};
  for (size_t i = 0; i < got_grads.size(); ++i) {
    const double scale = expected_grads[i].abs().max().item<double>();
    EXPECT_LT((got_grads[i] - expected_grads[i]).abs().max().item<double>(), 2e-5 * std::max(1.0, scale)) << names[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GruSequenceTest,
                         ::testing::Values(Shape{1, 1, 3, 5}, Shape{9, 1, 4, 7}, Shape{7, 3, 8, 6}, Shape{40, 4, 16, 33}, Shape{64, 2, 24, 48}));

TEST(GruSequence, BadShapesAreNamed) {
  auto w_ih = torch::zeros({12, 8}), w_hh = torch::zeros({12, 4}), b = torch::zeros({12});
  EXPECT_THROW(GruSequence(torch::zeros({5, 2, 7}), w_ih, w_hh, b, b), c10::Error);
  EXPECT_THROW(GruSequence(torch::zeros({5, 2, 8}), w_ih, torch::zeros({12, 5}), b, b), c10::Error);
}

}  // namespace
}  // namespace cadenza
