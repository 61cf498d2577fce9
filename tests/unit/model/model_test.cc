// Both model families: causality, incremental step == full forward, blocked additive attention == naive.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/experiment_config.h"
#include "core/model/additive_attention.h"
#include "core/model/model_api.h"
#include "core/model/sequence_model.h"
#include "core/tokenizer.h"
#include "core/model/generator.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

ModelConfig Tiny(const std::string& family, const std::string& attention = "general", int window = 0) {
  ModelConfig m;
  m.family = family;
  m.vocab_size = Vocabulary::Get().size();
  m.d_model = 32;
  m.layers = 2;
  m.heads = 4;
  m.ff_dim = 64;
  m.max_len = 128;
  m.hidden = 40;
  m.attention = attention;
  m.attention_window = window;
  m.dropout = 0.0;
  if (family == "transformer" && attention == "fused") m.heads = 2;  // head size 16: the fused attention kernel
  return m;
}

struct Case {
  std::string family, attention;
  int window;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.family << "/" << c.attention << "/window " << c.window; }
std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.family + "_" + info.param.attention + "_w" + std::to_string(info.param.window);
}

class EveryModel : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    torch::manual_seed(3);
    model_ = MakeModel(Tiny(GetParam().family, GetParam().attention, GetParam().window));
    model_->eval();
  }
  SequenceModel model_;
};

TEST_P(EveryModel, ForwardIsCausal) {
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(3, Vocabulary::Get().size(), {2, 24}, torch::kInt64);
  auto changed = tokens.clone();
  changed.index_put_({torch::indexing::Slice(), 15}, 7);
  auto a = model_->forward(tokens), b = model_->forward(changed);
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 15), b.narrow(1, 0, 15), 1e-5, 1e-6)) << "a later token changed earlier logits";
  EXPECT_FALSE(torch::allclose(a.narrow(1, 15, 9), b.narrow(1, 15, 9), 1e-5, 1e-6)) << "the changed token had no effect";
}

TEST_P(EveryModel, IncrementalStepsGiveTheFullForwardLogits) {
  torch::NoGradGuard no_grad;
  const int64_t T = 40;  // longer than the attention window of the windowed cases
  auto tokens = torch::randint(3, Vocabulary::Get().size(), {3, T}, torch::kInt64);
  auto full = model_->forward(tokens);
  auto state = model_->NewState(3, T);
  for (int64_t t = 0; t < T; ++t) {
    auto step = model_->Step(tokens.select(1, t).contiguous(), *state);
    ASSERT_TRUE(torch::allclose(step, full.select(1, t), 1e-4, 1e-4))
        << "position " << t << ": max difference " << (step - full.select(1, t)).abs().max().item<float>();
  }
  EXPECT_EQ(state->position, T);
}

TEST_P(EveryModel, GradientsReachEveryParameter) {
  model_->train();
  auto tokens = torch::randint(3, Vocabulary::Get().size(), {2, 16}, torch::kInt64);
  auto logits = model_->forward(tokens);
  logits.sum().backward();
  for (const auto& p : model_->named_parameters()) {
    if (p.key() == "positions") continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " gets no gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModel,
                         ::testing::Values(Case{"transformer", "selfattention", 0}, Case{"transformer", "fused", 0}, Case{"lstm", "dot", 0}, Case{"lstm", "general", 0},
                                           Case{"lstm", "additive", 0}, Case{"gru", "general", 8},
                                           Case{"gru", "additive", 8}, Case{"lstm", "dot", 5}),
                         CaseName);

// The blocked additive attention with its recomputing backward must equal the naive [B, T, T, A] version.
// Regression: when the Transformer's cache filled up, the sampler refilled it from every sequence's last
// tokens, reading before the start of a sequence that had already finished (an out-of-range token id).
TEST(Generation, CacheRestartWithFinishedSequencesStaysValid) {
  ModelConfig c = Tiny("transformer");
  c.max_len = 24;  // restarts every 12 tokens
  torch::manual_seed(3);
  SequenceModel model = MakeModel(c);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    GenerateOptions o;
    o.count = 8;
    o.bars = 1;  // sequences finish at different lengths; the unfinished ones run on past the context
    o.max_new_tokens = 160;
    o.seed = seed;
    auto samples = Generate(*model, o);
    ASSERT_TRUE(samples.ok()) << samples.status().message();
    for (const GeneratedSample& g : *samples) {
      ASSERT_FALSE(g.tokens.empty());
      EXPECT_EQ(g.tokens.back(), Vocabulary::Get().Eos());
      EXPECT_TRUE(Tokenizer().Decode(g.tokens).ok());
    }
  }
}

TEST(AdditiveAttention, MatchesNaiveValuesAndGradients) {
  torch::manual_seed(5);
  // A = 6: the scalar tail alone; A = 40: two 16-wide vectors and a tail.
  for (auto [window, A] : {std::pair<int64_t, int64_t>{0, 6}, {1, 6}, {7, 6}, {0, 40}, {5, 40}}) {
    auto q = torch::randn({2, 33, A}, torch::requires_grad());
    auto k = torch::randn({2, 33, A}, torch::requires_grad());
    auto v = torch::randn({A}, torch::requires_grad());
    auto grad = torch::randn({2, 33, 33});
    auto blocked = AdditiveAttentionScores(q, k, v, window);
    auto i = torch::arange(33).unsqueeze(1), j = torch::arange(33).unsqueeze(0);
    auto valid = j <= i;
    if (window > 0) valid = valid & (j > i - window);
    auto naive = torch::matmul(torch::tanh(q.unsqueeze(2) + k.unsqueeze(1)), v)
                     .masked_fill(valid.logical_not(), -std::numeric_limits<float>::infinity());
    ASSERT_TRUE(torch::equal(torch::isinf(blocked), torch::isinf(naive))) << "window " << window;
    auto finite = valid.expand_as(naive);
    EXPECT_TRUE(torch::allclose(blocked.masked_select(finite), naive.masked_select(finite), 1e-5, 1e-5)) << "window " << window;
    auto g1 = torch::autograd::grad({blocked.masked_fill(finite.logical_not(), 0)}, {q, k, v}, {grad});
    auto g2 = torch::autograd::grad({naive.masked_fill(finite.logical_not(), 0)}, {q, k, v}, {grad});
    for (int n = 0; n < 3; ++n) {
      EXPECT_TRUE(torch::allclose(g1[n], g2[n], 1e-4, 1e-4)) << "gradient " << n << ", window " << window;
    }
  }
}

TEST(ModelConfigs, ComparisonPairIsMatchedWithinTenPercent) {
  auto transformer = LoadModelConfig(CADENZA_SOURCE_DIR "/configs/models/transformer-base.yaml");
  auto lstm = LoadModelConfig(CADENZA_SOURCE_DIR "/configs/models/lstm-base.yaml");
  ASSERT_TRUE(transformer.ok()) << transformer.status().message();
  ASSERT_TRUE(lstm.ok()) << lstm.status().message();
  const double a = static_cast<double>(*CountParameters(*transformer)), b = static_cast<double>(*CountParameters(*lstm));
  std::printf("transformer-base %.0f parameters, lstm-base %.0f parameters (ratio %.3f)\n", a, b, b / a);
  EXPECT_LT(std::abs(a - b) / std::max(a, b), 0.10);
}

TEST(ModelConfigs, BadValuesAreNamed) {
  auto bad = ParseExperimentConfig("dataset: d\nout: o\nmodel: {family: transformer, d_model: 30, heads: 4}\n", "exp.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "exp.yaml: model.heads: expected a divisor of d_model (30)");
  // (train.epochs is a key now; a typo of it is still refused, by name)
  auto unknown = ParseExperimentConfig("dataset: d\nout: o\nmodel: {family: lstm}\ntrain: {lr: 0.1, epoch: 3}\n", "exp.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("train.epoch: unknown key (did you mean train.epochs?; expected one of: "), std::string::npos)
      << unknown.status().message();
  auto family = ParseExperimentConfig("dataset: d\nout: o\nmodel: {family: mamba}\n", "exp.yaml");
  ASSERT_FALSE(family.ok());
  EXPECT_NE(family.status().message().find("model.family"), std::string::npos) << family.status().message();
}

}  // namespace
}  // namespace cadenza
