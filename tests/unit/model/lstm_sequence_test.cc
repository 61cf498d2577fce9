// LstmSequence and GruSequence are the same functions as one torch::nn::LSTM / torch::nn::GRU layer: outputs and
// all five gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/gru_sequence.h"
#include "core/model/lstm_sequence.h"

namespace cadenza {
namespace {

struct RnnShape {
  int64_t T, B, In, H;
};

using FusedLayer = torch::Tensor (*)(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                     const torch::Tensor&, const torch::Tensor&);

// Runs `reference` (a one-layer torch module) and `fused` on its weights; compares values and gradients.
template <typename Module>
void ExpectSameFunction(Module reference, FusedLayer fused, const RnnShape& s) {
  torch::OrderedDict<std::string, torch::Tensor> params = reference->named_parameters();
  // Large inputs push the gates into saturation too, where sigmoid/tanh approximations would show.
  auto x = (torch::randn({s.T, s.B, s.In}) * 3).requires_grad_(true);
  auto upstream = torch::randn({s.T, s.B, s.H});
  const char* names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};

  torch::Tensor expected = std::get<0>(reference(x));
  (expected * upstream).sum().backward();
  std::vector<torch::Tensor> expected_grads{x.grad().clone()};
  for (const char* name : names) expected_grads.push_back(params[name].grad().clone());
  x.mutable_grad().zero_();
  for (auto& p : reference->parameters()) p.mutable_grad().zero_();

  torch::Tensor got = fused(x, params["weight_ih_l0"], params["weight_hh_l0"], params["bias_ih_l0"], params["bias_hh_l0"]);
  (got * upstream).sum().backward();
  std::vector<torch::Tensor> got_grads{x.grad()};
  for (const char* name : names) got_grads.push_back(params[name].grad());

  EXPECT_LT((got - expected).abs().max().item<double>(), 2e-6);
  const char* grad_names[] = {"x", "w_ih", "w_hh", "b_ih", "b_hh"};
  for (size_t i = 0; i < got_grads.size(); ++i) {
    const double scale = expected_grads[i].abs().max().item<double>();
    EXPECT_LT((got_grads[i] - expected_grads[i]).abs().max().item<double>(), 2e-5 * std::max(1.0, scale)) << grad_names[i];
  }
}

class RnnSequenceTest : public ::testing::TestWithParam<RnnShape> {};

TEST_P(RnnSequenceTest, LstmMatchesTorchLstmValuesAndGradients) {
  const RnnShape s = GetParam();
  torch::manual_seed(4);
  ExpectSameFunction(torch::nn::LSTM(torch::nn::LSTMOptions(s.In, s.H)), LstmSequence, s);
}

TEST_P(RnnSequenceTest, GruMatchesTorchGruValuesAndGradients) {
  const RnnShape s = GetParam();
  torch::manual_seed(4);
  ExpectSameFunction(torch::nn::GRU(torch::nn::GRUOptions(s.In, s.H)), GruSequence, s);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RnnSequenceTest,
                         ::testing::Values(RnnShape{1, 1, 3, 5}, RnnShape{9, 1, 4, 7}, RnnShape{7, 3, 8, 6}, RnnShape{40, 4, 16, 33},
                                           RnnShape{64, 2, 24, 48}));

TEST(RnnSequence, BadShapesAreNamed) {
  auto w_ih = torch::zeros({16, 8}), w_hh = torch::zeros({16, 4}), b = torch::zeros({16});
  EXPECT_THROW(LstmSequence(torch::zeros({5, 2, 7}), w_ih, w_hh, b, b), c10::Error);
  EXPECT_THROW(LstmSequence(torch::zeros({5, 2, 8}), w_ih, torch::zeros({16, 5}), b, b), c10::Error);
  auto g_ih = torch::zeros({12, 8}), g_hh = torch::zeros({12, 4}), gb = torch::zeros({12});
  EXPECT_THROW(GruSequence(torch::zeros({5, 2, 7}), g_ih, g_hh, gb, gb), c10::Error);
  EXPECT_THROW(GruSequence(torch::zeros({5, 2, 8}), g_ih, torch::zeros({12, 5}), gb, gb), c10::Error);
}

}  // namespace
}  // namespace cadenza
